//! Topic-level configuration: the overrides a topic was created with, validated once and
//! stored typed, with the node's config as the fallback for everything not overridden.
//!
//! Invariant: a [`TopicConfig`] only ever holds values that passed validation, so readers
//! never re-check them; [`TopicConfig::overrides`] round-trips through
//! [`TopicConfig::from_overrides`] (that is how topics are persisted).

use std::collections::BTreeMap;

use crate::config::NodeConfig;

/// Kafka's ConfigType codes used in DescribeConfigs v3+.
pub mod config_type {
    /// Boolean.
    pub const BOOLEAN: i8 = 1;
    /// String.
    pub const STRING: i8 = 2;
    /// 32-bit integer.
    pub const INT: i8 = 3;
    /// 64-bit integer.
    pub const LONG: i8 = 5;
    /// Comma-separated list.
    pub const LIST: i8 = 7;
}

/// Where a record's timestamp comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamp is kept.
    #[default]
    CreateTime,
    /// The broker overwrites batch timestamps with its wall clock at append.
    LogAppendTime,
}

/// A topic's validated config overrides. `None` means "use the node default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    /// `retention.ms`.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`.
    pub retention_bytes: Option<i64>,
    /// `segment.bytes`.
    pub segment_bytes: Option<i32>,
    /// `max.message.bytes`.
    pub max_message_bytes: Option<i32>,
    /// `message.timestamp.type`.
    pub timestamp_type: Option<TimestampType>,
    /// `min.insync.replicas` (stored; enforced once replication exists).
    pub min_insync_replicas: Option<i32>,
    /// `cleanup.policy` was given explicitly (only `delete` is accepted).
    pub cleanup_policy_delete: bool,
    /// `compression.type` was given explicitly (only `producer` is accepted).
    pub compression_producer: bool,
}

/// A refused topic config, answered as INVALID_CONFIG with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TopicConfigError {
    /// Kafka-style explanation naming the config.
    pub message: String,
}

/// One resolved config entry, as DescribeConfigs and CreateTopics report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: &'static str,
    /// Effective value.
    pub value: String,
    /// True when the value comes from the default rather than an override.
    pub is_default: bool,
    /// Kafka ConfigType (see [`config_type`]).
    pub config_type: i8,
}

/// Every topic config Weir knows, in the order DescribeConfigs lists them.
pub const TOPIC_CONFIG_NAMES: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "max.message.bytes",
    "message.timestamp.type",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
];

impl TopicConfig {
    /// Validate `(name, value)` pairs from CreateTopics (or from storage).
    pub fn from_overrides<'a, I>(pairs: I) -> Result<Self, TopicConfigError>
    where
        I: IntoIterator<Item = (&'a str, Option<&'a str>)>,
    {
        let mut config = TopicConfig::default();
        for (name, value) in pairs {
            let Some(value) = value else {
                return Err(refuse(format!(
                    "Null value not supported for topic configs: {name}"
                )));
            };
            config.set(name, value.trim())?;
        }
        Ok(config)
    }

    /// The explicit overrides as canonical `(name, value)` strings (persisted form).
    pub fn overrides(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        let mut put = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                map.insert(name.to_string(), value);
            }
        };
        put(
            "cleanup.policy",
            self.cleanup_policy_delete.then(|| "delete".to_string()),
        );
        put(
            "compression.type",
            self.compression_producer.then(|| "producer".to_string()),
        );
        put(
            "max.message.bytes",
            self.max_message_bytes.map(|v| v.to_string()),
        );
        put(
            "message.timestamp.type",
            self.timestamp_type.map(|t| timestamp_name(t).into()),
        );
        put(
            "min.insync.replicas",
            self.min_insync_replicas.map(|v| v.to_string()),
        );
        put(
            "retention.bytes",
            self.retention_bytes.map(|v| v.to_string()),
        );
        put("retention.ms", self.retention_ms.map(|v| v.to_string()));
        put("segment.bytes", self.segment_bytes.map(|v| v.to_string()));
        map
    }

    /// Effective `retention.ms` (-1 = forever).
    pub fn retention_ms(&self, node: &NodeConfig) -> i64 {
        self.retention_ms.unwrap_or(node.retention_ms)
    }

    /// Effective `retention.bytes` (-1 = unbounded).
    pub fn retention_bytes(&self, node: &NodeConfig) -> i64 {
        self.retention_bytes.unwrap_or(node.retention_bytes)
    }

    /// Effective `segment.bytes`.
    pub fn segment_bytes(&self, node: &NodeConfig) -> u64 {
        match self.segment_bytes {
            Some(bytes) => u64::try_from(bytes).unwrap_or(NodeConfig::SEGMENT_BYTES_MIN),
            None => node.segment_bytes,
        }
    }

    /// Effective `max.message.bytes` (topic) / `message.max.bytes` (node).
    pub fn max_message_bytes(&self, node: &NodeConfig) -> i32 {
        self.max_message_bytes.unwrap_or(node.message_max_bytes)
    }

    /// Effective `message.timestamp.type`.
    pub fn timestamp_type(&self) -> TimestampType {
        self.timestamp_type.unwrap_or_default()
    }

    /// Every topic config with its effective value, in [`TOPIC_CONFIG_NAMES`] order.
    pub fn describe(&self, node: &NodeConfig) -> Vec<ConfigEntry> {
        let entry = |name, value: String, is_default, config_type| ConfigEntry {
            name,
            value,
            is_default,
            config_type,
        };
        use config_type::{INT, LIST, LONG, STRING};
        vec![
            entry(
                "cleanup.policy",
                "delete".into(),
                !self.cleanup_policy_delete,
                LIST,
            ),
            entry(
                "compression.type",
                "producer".into(),
                !self.compression_producer,
                STRING,
            ),
            entry(
                "max.message.bytes",
                self.max_message_bytes(node).to_string(),
                self.max_message_bytes.is_none(),
                INT,
            ),
            entry(
                "message.timestamp.type",
                timestamp_name(self.timestamp_type()).into(),
                self.timestamp_type.is_none(),
                STRING,
            ),
            entry(
                "min.insync.replicas",
                self.min_insync_replicas.unwrap_or(1).to_string(),
                self.min_insync_replicas.is_none(),
                INT,
            ),
            entry(
                "retention.bytes",
                self.retention_bytes(node).to_string(),
                self.retention_bytes.is_none(),
                LONG,
            ),
            entry(
                "retention.ms",
                self.retention_ms(node).to_string(),
                self.retention_ms.is_none(),
                LONG,
            ),
            entry(
                "segment.bytes",
                self.segment_bytes(node).to_string(),
                self.segment_bytes.is_none(),
                INT,
            ),
        ]
    }

    /// Validate and store one override.
    fn set(&mut self, name: &str, value: &str) -> Result<(), TopicConfigError> {
        match name {
            "cleanup.policy" => {
                let policies: Vec<&str> = value.split(',').map(str::trim).collect();
                if policies.contains(&"compact") {
                    return Err(refuse(
                        "cleanup.policy=compact: compaction not supported yet",
                    ));
                }
                if policies != ["delete"] {
                    return Err(invalid_value(name, value, "expected delete"));
                }
                self.cleanup_policy_delete = true;
            }
            "compression.type" => {
                // Recompressing on the broker is not implemented: batches are stored as sent.
                if value != "producer" {
                    return Err(invalid_value(name, value, "only 'producer' is supported"));
                }
                self.compression_producer = true;
            }
            "max.message.bytes" => self.max_message_bytes = Some(parse_int(name, value, 0)?),
            "message.timestamp.type" => {
                self.timestamp_type = Some(match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => {
                        return Err(invalid_value(
                            name,
                            value,
                            "expected CreateTime or LogAppendTime",
                        ))
                    }
                });
            }
            "min.insync.replicas" => self.min_insync_replicas = Some(parse_int(name, value, 1)?),
            "retention.bytes" => self.retention_bytes = Some(parse_long(name, value, -1)?),
            "retention.ms" => self.retention_ms = Some(parse_long(name, value, -1)?),
            "segment.bytes" => {
                let min = i32::try_from(NodeConfig::SEGMENT_BYTES_MIN).unwrap_or(i32::MAX);
                self.segment_bytes = Some(parse_int(name, value, min)?);
            }
            _ => return Err(refuse(format!("Unknown topic config name: {name}"))),
        }
        Ok(())
    }
}

/// Kafka's spelling of a timestamp type.
pub fn timestamp_name(timestamp_type: TimestampType) -> &'static str {
    match timestamp_type {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

fn refuse(message: impl Into<String>) -> TopicConfigError {
    TopicConfigError {
        message: message.into(),
    }
}

fn invalid_value(name: &str, value: &str, reason: &str) -> TopicConfigError {
    refuse(format!(
        "Invalid value {value} for configuration {name}: {reason}"
    ))
}

fn parse_int(name: &str, value: &str, min: i32) -> Result<i32, TopicConfigError> {
    match value.parse::<i32>() {
        Ok(parsed) if parsed >= min => Ok(parsed),
        Ok(_) => Err(invalid_value(
            name,
            value,
            &format!("Value must be at least {min}"),
        )),
        Err(_) => Err(invalid_value(name, value, "Not a number of type INT")),
    }
}

fn parse_long(name: &str, value: &str, min: i64) -> Result<i64, TopicConfigError> {
    match value.parse::<i64>() {
        Ok(parsed) if parsed >= min => Ok(parsed),
        Ok(_) => Err(invalid_value(
            name,
            value,
            &format!("Value must be at least {min}"),
        )),
        Err(_) => Err(invalid_value(name, value, "Not a number of type LONG")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<TopicConfig, TopicConfigError> {
        TopicConfig::from_overrides(pairs.iter().map(|(k, v)| (*k, Some(*v))))
    }

    // Goal: accepted overrides are typed, resolved against node defaults, and persist
    // losslessly. Method: parse every supported key, resolve, and round-trip overrides().
    #[test]
    fn overrides_resolve_and_round_trip() {
        let node = NodeConfig::default();
        let config = parse(&[
            ("retention.ms", "1000"),
            ("retention.bytes", "2048"),
            ("segment.bytes", "1024"),
            ("max.message.bytes", "500"),
            ("message.timestamp.type", "LogAppendTime"),
            ("min.insync.replicas", "1"),
            ("cleanup.policy", "delete"),
            ("compression.type", "producer"),
        ])
        .expect("all values are valid");
        assert_eq!(config.retention_ms(&node), 1000);
        assert_eq!(config.retention_bytes(&node), 2048);
        assert_eq!(config.segment_bytes(&node), 1024);
        assert_eq!(config.max_message_bytes(&node), 500);
        assert_eq!(config.timestamp_type(), TimestampType::LogAppendTime);
        let stored = config.overrides();
        let reparsed =
            TopicConfig::from_overrides(stored.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))))
                .expect("persisted overrides reparse");
        assert_eq!(reparsed, config);
        assert!(config.describe(&node).iter().all(|entry| !entry.is_default));
    }

    // Goal: bad configs are refused with a message naming the key. Method: one bad value
    // per rule (unknown key, compact, bad number, below minimum, bad enum, null).
    #[test]
    fn invalid_configs_are_refused() {
        let message = |pairs: &[(&str, &str)]| parse(pairs).expect_err("must be refused").message;
        assert!(message(&[("flush.bananas", "1")]).contains("Unknown topic config name"));
        assert!(message(&[("cleanup.policy", "compact")]).contains("compaction not supported"));
        assert!(message(&[("retention.ms", "soon")]).contains("retention.ms"));
        assert!(message(&[("segment.bytes", "3")]).contains("at least 14"));
        assert!(message(&[("message.timestamp.type", "Now")]).contains("CreateTime"));
        assert!(message(&[("compression.type", "zstd")]).contains("producer"));
        let null = TopicConfig::from_overrides([("retention.ms", None)]).expect_err("null");
        assert!(null.message.contains("Null value"));
    }

    // Goal: without overrides every entry reports the node default as default.
    #[test]
    fn defaults_come_from_the_node() {
        let node = NodeConfig {
            retention_ms: 42,
            ..NodeConfig::default()
        };
        let entries = TopicConfig::default().describe(&node);
        assert_eq!(entries.len(), TOPIC_CONFIG_NAMES.len());
        assert!(entries.iter().all(|entry| entry.is_default));
        let names: Vec<&str> = entries.iter().map(|entry| entry.name).collect();
        assert_eq!(names, TOPIC_CONFIG_NAMES);
        let retention = entries
            .iter()
            .find(|e| e.name == "retention.ms")
            .expect("listed");
        assert_eq!(retention.value, "42");
    }
}
