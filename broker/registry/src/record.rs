//! The records of `_schemas`, in Confluent's layout (JSON keys and values), so that the
//! topic reads like Confluent's to a human or a tool.
//!
//! Keys are what compaction keeps the latest record of: a schema version is keyed by
//! `{subject, version}`, a configuration and a mode by their subject (`null` for the global
//! one), so a compacted log replays to the same store. A permanent delete is a tombstone
//! of the version's key. Ids are final in the record; `ID_WATERMARK` (Weir's own key type)
//! keeps the highest id ever handed out once permanent deletes have removed its schema, so
//! an id is never handed out twice, even after compaction.
//!
//! Keys serialize with a fixed field order, so equal keys are equal bytes.

use serde::{Deserialize, Serialize};

use crate::compat::CompatibilityLevel;
use crate::format::{Reference, SchemaType};

/// One record to append to `_schemas`: JSON key, JSON value or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A decoded key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Key {
    Schema {
        subject: String,
        version: u32,
        magic: u8,
    },
    Config {
        subject: Option<String>,
        magic: u8,
    },
    Mode {
        subject: Option<String>,
        magic: u8,
    },
    IdWatermark {
        magic: u8,
    },
    /// Confluent writes these beside a subject's soft delete; replay ignores them.
    DeleteSubject {
        subject: String,
        magic: u8,
    },
    Noop {
        magic: u8,
    },
}

/// A schema version's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaValue {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    #[serde(default, skip_serializing_if = "SchemaType::is_avro")]
    pub schema_type: SchemaType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    pub compatibility_level: CompatibilityLevel,
}

/// The registry's mode: READONLY refuses writes, IMPORT lets registrations carry their id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    #[default]
    Readwrite,
    Readonly,
    Import,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Readwrite => "READWRITE",
            Self::Readonly => "READONLY",
            Self::Import => "IMPORT",
        }
    }

    pub fn parse_name(name: &str) -> Option<Mode> {
        match name.to_ascii_uppercase().as_str() {
            "READWRITE" => Some(Self::Readwrite),
            "READONLY" | "READONLY_OVERRIDE" => Some(Self::Readonly),
            "IMPORT" => Some(Self::Import),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkValue {
    pub id: u32,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).unwrap_or_default()
}

impl Record {
    pub fn schema(value: &SchemaValue) -> Record {
        let key = Key::Schema {
            subject: value.subject.clone(),
            version: value.version,
            magic: 1,
        };
        Record {
            key: json(&key),
            value: Some(json(value)),
        }
    }

    pub fn schema_tombstone(subject: &str, version: u32) -> Record {
        let key = Key::Schema {
            subject: subject.to_owned(),
            version,
            magic: 1,
        };
        Record {
            key: json(&key),
            value: None,
        }
    }

    pub fn config(subject: Option<&str>, level: Option<CompatibilityLevel>) -> Record {
        let key = Key::Config {
            subject: subject.map(str::to_owned),
            magic: 0,
        };
        let value = level.map(|level| {
            json(&ConfigValue {
                compatibility_level: level,
            })
        });
        Record {
            key: json(&key),
            value,
        }
    }

    pub fn mode(subject: Option<&str>, mode: Option<Mode>) -> Record {
        let key = Key::Mode {
            subject: subject.map(str::to_owned),
            magic: 0,
        };
        Record {
            key: json(&key),
            value: mode.map(|mode| json(&ModeValue { mode })),
        }
    }

    pub fn id_watermark(id: u32) -> Record {
        Record {
            key: json(&Key::IdWatermark { magic: 0 }),
            value: Some(json(&WatermarkValue { id })),
        }
    }
}
