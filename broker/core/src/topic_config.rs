//! Topic-level configuration: the overrides a topic was created with, validated once and
//! stored typed, with the node's config as the fallback for everything not overridden.
//!
//! Invariant: a [`TopicConfig`] only ever holds values that passed validation, so readers
//! never re-check them; [`TopicConfig::overrides`] round-trips through
//! [`TopicConfig::from_overrides`] (that is how topics are persisted). The persisted strings
//! are canonical and stable: `cleanup.policy` is stored as `delete`, `compact` or
//! `compact,delete`, so topics written before compaction existed (`cleanup.policy=delete`)
//! load unchanged.

use std::collections::BTreeMap;

pub use crate::config::{CleanupPolicy, DirtyRatio};

use crate::config::NodeConfig;
pub use crate::schema_check::SubjectNameStrategy;
use crate::schema_check::Validation;

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
    /// 64-bit floating point.
    pub const DOUBLE: i8 = 6;
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
    /// `cleanup.policy`.
    pub cleanup_policy: Option<CleanupPolicy>,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: Option<DirtyRatio>,
    /// `delete.retention.ms`: how long a tombstone survives compaction.
    pub delete_retention_ms: Option<i64>,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: Option<i64>,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: Option<i64>,
    /// `segment.ms`.
    pub segment_ms: Option<i64>,
    /// `compression.type` was given explicitly (only `producer` is accepted).
    pub compression_producer: bool,
    /// `remote.storage.enable`: tiered storage (KIP-405).
    pub remote_storage_enable: Option<bool>,
    /// `local.retention.ms` (-2: `retention.ms`): how long uploaded data stays local.
    pub local_retention_ms: Option<i64>,
    /// `local.retention.bytes` (-2: `retention.bytes`).
    pub local_retention_bytes: Option<i64>,
    /// `confluent.key.schema.validation`: keys must carry a registered schema id.
    pub key_schema_validation: Option<bool>,
    /// `confluent.value.schema.validation`: values must carry a registered schema id.
    pub value_schema_validation: Option<bool>,
    /// `confluent.key.subject.name.strategy`.
    pub key_subject_name_strategy: Option<SubjectNameStrategy>,
    /// `confluent.value.subject.name.strategy`.
    pub value_subject_name_strategy: Option<SubjectNameStrategy>,
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
    "confluent.key.schema.validation",
    "confluent.key.subject.name.strategy",
    "confluent.value.schema.validation",
    "confluent.value.subject.name.strategy",
    "delete.retention.ms",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
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
        config.check_compaction_lags(None)?;
        Ok(config)
    }

    /// Kafka's cross-field rule on the effective values (overrides over `node`'s defaults):
    /// `min.compaction.lag.ms` must not exceed `max.compaction.lag.ms`. [`from_overrides`]
    /// checks it between overrides only (it has no node); CreateTopics and AlterConfigs call
    /// this too so an override cannot contradict the broker's default.
    ///
    /// [`from_overrides`]: TopicConfig::from_overrides
    pub fn check_against(&self, node: &NodeConfig) -> Result<(), TopicConfigError> {
        self.check_compaction_lags(Some(node))?;
        self.check_remote(node)
    }

    /// Kafka's rules for tiered topics: the broker must have a remote store, a compacted
    /// topic cannot be tiered, and local retention cannot exceed total retention.
    fn check_remote(&self, node: &NodeConfig) -> Result<(), TopicConfigError> {
        if !self.remote_storage_enable(node) {
            return Ok(());
        }
        if !node.remote_storage_enable {
            return Err(refuse(
                "Tiered Storage functionality is disabled in the broker: configure \
                 weir.remote.storage.url to use remote.storage.enable=true",
            ));
        }
        if self.cleanup_policy(node).compact {
            return Err(refuse(
                "Remote log storage only supports topics with cleanup.policy=delete",
            ));
        }
        let pairs = [
            (
                "local.retention.ms",
                self.local_retention_ms(node),
                "retention.ms",
            ),
            (
                "local.retention.bytes",
                self.local_retention_bytes(node),
                "retention.bytes",
            ),
        ];
        let totals = [self.retention_ms(node), self.retention_bytes(node)];
        for ((local_name, local, total_name), total) in pairs.into_iter().zip(totals) {
            if total >= 0 && (local < 0 || local > total) {
                return Err(refuse(format!(
                    "Invalid value {local} for configuration {local_name}: Value must not \
                     be more than {total_name} property value: {total}"
                )));
            }
        }
        Ok(())
    }

    /// Refuse turning tiered storage off once on (Kafka refuses it too: the remote data
    /// would be stranded).
    pub fn check_change_from(
        &self,
        before: &TopicConfig,
        node: &NodeConfig,
    ) -> Result<(), TopicConfigError> {
        if before.remote_storage_enable(node) && !self.remote_storage_enable(node) {
            return Err(refuse(
                "It is invalid to disable remote storage without deleting remote data. \
                 To delete the data, delete the topic",
            ));
        }
        Ok(())
    }

    /// Effective `remote.storage.enable` (false by default).
    pub fn remote_storage_enable(&self, _node: &NodeConfig) -> bool {
        self.remote_storage_enable.unwrap_or(false)
    }

    /// Effective `local.retention.ms`: -2 (the default) means `retention.ms`.
    pub fn local_retention_ms(&self, node: &NodeConfig) -> i64 {
        match self.local_retention_ms.unwrap_or(node.local_retention_ms) {
            -2 => self.retention_ms(node),
            value => value,
        }
    }

    /// Effective `local.retention.bytes`: -2 (the default) means `retention.bytes`.
    pub fn local_retention_bytes(&self, node: &NodeConfig) -> i64 {
        match self
            .local_retention_bytes
            .unwrap_or(node.local_retention_bytes)
        {
            -2 => self.retention_bytes(node),
            value => value,
        }
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
            self.cleanup_policy.map(|p| p.as_list().to_string()),
        );
        put(
            "compression.type",
            self.compression_producer.then(|| "producer".to_string()),
        );
        put(
            "confluent.key.schema.validation",
            self.key_schema_validation.map(|v| v.to_string()),
        );
        put(
            "confluent.key.subject.name.strategy",
            self.key_subject_name_strategy.map(|v| v.name().to_string()),
        );
        put(
            "confluent.value.schema.validation",
            self.value_schema_validation.map(|v| v.to_string()),
        );
        put(
            "confluent.value.subject.name.strategy",
            self.value_subject_name_strategy
                .map(|v| v.name().to_string()),
        );
        put(
            "delete.retention.ms",
            self.delete_retention_ms.map(|v| v.to_string()),
        );
        put(
            "local.retention.bytes",
            self.local_retention_bytes.map(|v| v.to_string()),
        );
        put(
            "local.retention.ms",
            self.local_retention_ms.map(|v| v.to_string()),
        );
        put(
            "max.compaction.lag.ms",
            self.max_compaction_lag_ms.map(|v| v.to_string()),
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
            "min.cleanable.dirty.ratio",
            self.min_cleanable_dirty_ratio.map(|v| v.to_string()),
        );
        put(
            "min.compaction.lag.ms",
            self.min_compaction_lag_ms.map(|v| v.to_string()),
        );
        put(
            "min.insync.replicas",
            self.min_insync_replicas.map(|v| v.to_string()),
        );
        put(
            "remote.storage.enable",
            self.remote_storage_enable.map(|v| v.to_string()),
        );
        put(
            "retention.bytes",
            self.retention_bytes.map(|v| v.to_string()),
        );
        put("retention.ms", self.retention_ms.map(|v| v.to_string()));
        put("segment.bytes", self.segment_bytes.map(|v| v.to_string()));
        put("segment.ms", self.segment_ms.map(|v| v.to_string()));
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

    /// Effective `cleanup.policy` (node: `log.cleanup.policy`). Retention by time and size
    /// applies only when `delete` is set; the log cleaner runs only when `compact` is.
    pub fn cleanup_policy(&self, node: &NodeConfig) -> CleanupPolicy {
        self.cleanup_policy.unwrap_or(node.cleanup_policy)
    }

    /// Effective `min.cleanable.dirty.ratio` (node: `log.cleaner.min.cleanable.ratio`), in
    /// `0.0..=1.0`.
    pub fn min_cleanable_dirty_ratio(&self, node: &NodeConfig) -> f64 {
        self.min_cleanable_dirty_ratio
            .unwrap_or(node.min_cleanable_dirty_ratio)
            .get()
    }

    /// Effective `delete.retention.ms` (node: `log.cleaner.delete.retention.ms`), >= 0.
    pub fn delete_retention_ms(&self, node: &NodeConfig) -> i64 {
        self.delete_retention_ms.unwrap_or(node.delete_retention_ms)
    }

    /// Effective `min.compaction.lag.ms` (node: `log.cleaner.min.compaction.lag.ms`), >= 0.
    pub fn min_compaction_lag_ms(&self, node: &NodeConfig) -> i64 {
        self.min_compaction_lag_ms
            .unwrap_or(node.min_compaction_lag_ms)
    }

    /// Effective `max.compaction.lag.ms` (node: `log.cleaner.max.compaction.lag.ms`), >= 1.
    pub fn max_compaction_lag_ms(&self, node: &NodeConfig) -> i64 {
        self.max_compaction_lag_ms
            .unwrap_or(node.max_compaction_lag_ms)
    }

    /// Effective `segment.ms` (node: `log.roll.ms` / `log.roll.hours`), >= 1.
    pub fn segment_ms(&self, node: &NodeConfig) -> i64 {
        self.segment_ms.unwrap_or(node.segment_ms)
    }

    /// The age at which the active segment is closed: `segment.ms`, or
    /// `max.compaction.lag.ms` when the topic is compacted and that is sooner (Kafka's
    /// `LogConfig.maxSegmentMs`), because the cleaner never compacts the active segment.
    pub fn segment_roll_ms(&self, node: &NodeConfig) -> i64 {
        let segment_ms = self.segment_ms(node);
        if self.cleanup_policy(node).compact {
            segment_ms.min(self.max_compaction_lag_ms(node))
        } else {
            segment_ms
        }
    }

    /// Every topic config with its effective value, in [`TOPIC_CONFIG_NAMES`] order.
    pub fn describe(&self, node: &NodeConfig) -> Vec<ConfigEntry> {
        let mut entries = self.describe_log(node);
        entries.extend(self.describe_cleaner(node));
        entries.extend(self.describe_remote(node));
        entries.extend(self.describe_schemas());
        // A name missing from TOPIC_CONFIG_NAMES would sort last, and fail the tests that
        // compare the two lists.
        entries.sort_by_key(|entry| {
            (TOPIC_CONFIG_NAMES.iter())
                .position(|name| *name == entry.name)
                .unwrap_or(usize::MAX)
        });
        entries
    }

    /// The entries of appending, rolling and retention.
    fn describe_log(&self, node: &NodeConfig) -> Vec<ConfigEntry> {
        use config_type::{INT, LONG, STRING};
        vec![
            entry(
                "compression.type",
                "producer",
                !self.compression_producer,
                STRING,
            ),
            entry(
                "max.message.bytes",
                self.max_message_bytes(node),
                self.max_message_bytes.is_none(),
                INT,
            ),
            entry(
                "message.timestamp.type",
                timestamp_name(self.timestamp_type()),
                self.timestamp_type.is_none(),
                STRING,
            ),
            entry(
                "min.insync.replicas",
                self.min_insync_replicas.unwrap_or(1),
                self.min_insync_replicas.is_none(),
                INT,
            ),
            entry(
                "retention.bytes",
                self.retention_bytes(node),
                self.retention_bytes.is_none(),
                LONG,
            ),
            entry(
                "retention.ms",
                self.retention_ms(node),
                self.retention_ms.is_none(),
                LONG,
            ),
            entry(
                "segment.bytes",
                self.segment_bytes(node),
                self.segment_bytes.is_none(),
                INT,
            ),
            entry(
                "segment.ms",
                self.segment_ms(node),
                self.segment_ms.is_none(),
                LONG,
            ),
        ]
    }

    /// The entries of broker-side schema validation.
    fn describe_schemas(&self) -> Vec<ConfigEntry> {
        use config_type::{BOOLEAN, STRING};
        let strategy = |value: Option<SubjectNameStrategy>| value.unwrap_or_default().name();
        vec![
            entry(
                "confluent.key.schema.validation",
                self.key_schema_validation.unwrap_or(false),
                self.key_schema_validation.is_none(),
                BOOLEAN,
            ),
            entry(
                "confluent.key.subject.name.strategy",
                strategy(self.key_subject_name_strategy),
                self.key_subject_name_strategy.is_none(),
                STRING,
            ),
            entry(
                "confluent.value.schema.validation",
                self.value_schema_validation.unwrap_or(false),
                self.value_schema_validation.is_none(),
                BOOLEAN,
            ),
            entry(
                "confluent.value.subject.name.strategy",
                strategy(self.value_subject_name_strategy),
                self.value_subject_name_strategy.is_none(),
                STRING,
            ),
        ]
    }

    /// What broker-side schema validation checks on this topic's records, if anything.
    pub fn schema_validation(&self) -> Option<Validation> {
        let side = |on: Option<bool>, strategy: Option<SubjectNameStrategy>| {
            on.unwrap_or(false).then(|| strategy.unwrap_or_default())
        };
        let validation = Validation {
            key: side(self.key_schema_validation, self.key_subject_name_strategy),
            value: side(
                self.value_schema_validation,
                self.value_subject_name_strategy,
            ),
        };
        (validation.key.is_some() || validation.value.is_some()).then_some(validation)
    }

    /// The entries of tiered storage.
    fn describe_remote(&self, node: &NodeConfig) -> Vec<ConfigEntry> {
        use config_type::{BOOLEAN, LONG};
        vec![
            entry(
                "local.retention.bytes",
                self.local_retention_bytes
                    .unwrap_or(node.local_retention_bytes),
                self.local_retention_bytes.is_none(),
                LONG,
            ),
            entry(
                "local.retention.ms",
                self.local_retention_ms.unwrap_or(node.local_retention_ms),
                self.local_retention_ms.is_none(),
                LONG,
            ),
            entry(
                "remote.storage.enable",
                self.remote_storage_enable(node),
                self.remote_storage_enable.is_none(),
                BOOLEAN,
            ),
        ]
    }

    /// The entries of the cleanup policy and the log cleaner.
    fn describe_cleaner(&self, node: &NodeConfig) -> Vec<ConfigEntry> {
        use config_type::{DOUBLE, LIST, LONG};
        vec![
            entry(
                "cleanup.policy",
                self.cleanup_policy(node),
                self.cleanup_policy.is_none(),
                LIST,
            ),
            entry(
                "delete.retention.ms",
                self.delete_retention_ms(node),
                self.delete_retention_ms.is_none(),
                LONG,
            ),
            entry(
                "max.compaction.lag.ms",
                self.max_compaction_lag_ms(node),
                self.max_compaction_lag_ms.is_none(),
                LONG,
            ),
            entry(
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio
                    .unwrap_or(node.min_cleanable_dirty_ratio),
                self.min_cleanable_dirty_ratio.is_none(),
                DOUBLE,
            ),
            entry(
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms(node),
                self.min_compaction_lag_ms.is_none(),
                LONG,
            ),
        ]
    }

    /// Validate and store one override.
    fn set(&mut self, name: &str, value: &str) -> Result<(), TopicConfigError> {
        match name {
            "cleanup.policy" => {
                let policy = CleanupPolicy::parse_list(value)
                    .map_err(|error| invalid_value(name, value, &error.to_string()))?;
                self.cleanup_policy = Some(policy);
            }
            "compression.type" => {
                // Recompressing on the broker is not implemented: batches are stored as sent.
                if value != "producer" {
                    return Err(invalid_value(name, value, "only 'producer' is supported"));
                }
                self.compression_producer = true;
            }
            "delete.retention.ms" => self.delete_retention_ms = Some(parse_long(name, value, 0)?),
            "max.compaction.lag.ms" => {
                self.max_compaction_lag_ms = Some(parse_long(name, value, 1)?);
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
            "min.cleanable.dirty.ratio" => {
                self.min_cleanable_dirty_ratio = Some(parse_ratio(name, value)?);
            }
            "min.compaction.lag.ms" => {
                self.min_compaction_lag_ms = Some(parse_long(name, value, 0)?);
            }
            "min.insync.replicas" => self.min_insync_replicas = Some(parse_int(name, value, 1)?),
            "retention.bytes" => self.retention_bytes = Some(parse_long(name, value, -1)?),
            "retention.ms" => self.retention_ms = Some(parse_long(name, value, -1)?),
            "segment.bytes" => {
                let min = i32::try_from(NodeConfig::SEGMENT_BYTES_MIN).unwrap_or(i32::MAX);
                self.segment_bytes = Some(parse_int(name, value, min)?);
            }
            "segment.ms" => self.segment_ms = Some(parse_long(name, value, 1)?),
            "remote.storage.enable" => self.remote_storage_enable = Some(parse_bool(name, value)?),
            "confluent.key.schema.validation" => {
                self.key_schema_validation = Some(parse_bool(name, value)?);
            }
            "confluent.value.schema.validation" => {
                self.value_schema_validation = Some(parse_bool(name, value)?);
            }
            "confluent.key.subject.name.strategy" => {
                self.key_subject_name_strategy = Some(parse_strategy(name, value)?);
            }
            "confluent.value.subject.name.strategy" => {
                self.value_subject_name_strategy = Some(parse_strategy(name, value)?);
            }
            "local.retention.ms" => self.local_retention_ms = Some(parse_long(name, value, -2)?),
            "local.retention.bytes" => {
                self.local_retention_bytes = Some(parse_long(name, value, -2)?);
            }
            _ => return Err(refuse(format!("Unknown topic config name: {name}"))),
        }
        Ok(())
    }

    /// `min.compaction.lag.ms <= max.compaction.lag.ms`, Kafka's message naming both. An
    /// unset side is left out without `node`, and is `node`'s default with it.
    fn check_compaction_lags(&self, node: Option<&NodeConfig>) -> Result<(), TopicConfigError> {
        let min = self
            .min_compaction_lag_ms
            .or(node.map(|node| node.min_compaction_lag_ms));
        let max = self
            .max_compaction_lag_ms
            .or(node.map(|node| node.max_compaction_lag_ms));
        match (min, max) {
            (Some(min), Some(max)) if min > max => Err(refuse(format!(
                "conflict topic config setting min.compaction.lag.ms ({min}) > \
                 max.compaction.lag.ms ({max})"
            ))),
            _ => Ok(()),
        }
    }
}

/// Kafka's spelling of a timestamp type.
pub fn timestamp_name(timestamp_type: TimestampType) -> &'static str {
    match timestamp_type {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// One DescribeConfigs entry.
fn entry(
    name: &'static str,
    value: impl ToString,
    is_default: bool,
    config_type: i8,
) -> ConfigEntry {
    ConfigEntry {
        name,
        value: value.to_string(),
        is_default,
        config_type,
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

/// A BOOLEAN, as Kafka's ConfigDef parses it (case-insensitive `true`/`false`).
fn parse_bool(name: &str, value: &str) -> Result<bool, TopicConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid_value(
            name,
            value,
            "Expected value to be either true or false",
        )),
    }
}

/// A subject name strategy: Confluent's class name or its short name.
fn parse_strategy(name: &str, value: &str) -> Result<SubjectNameStrategy, TopicConfigError> {
    SubjectNameStrategy::parse(value).ok_or_else(|| {
        invalid_value(
            name,
            value,
            "expected TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy \
             (short or io.confluent.kafka.serializers.subject.* class name)",
        )
    })
}

/// A DOUBLE in `0..=1` (`min.cleanable.dirty.ratio`), with Kafka's messages.
fn parse_ratio(name: &str, value: &str) -> Result<DirtyRatio, TopicConfigError> {
    let Ok(parsed) = value.parse::<f64>() else {
        return Err(invalid_value(name, value, "Not a number of type DOUBLE"));
    };
    DirtyRatio::new(parsed).ok_or_else(|| {
        invalid_value(
            name,
            value,
            "Value must be a number between 0 and 1 inclusive",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<TopicConfig, TopicConfigError> {
        TopicConfig::from_overrides(pairs.iter().map(|(k, v)| (*k, Some(*v))))
    }

    fn message(pairs: &[(&str, &str)]) -> String {
        parse(pairs).expect_err("must be refused").message
    }

    fn reparse(config: &TopicConfig) -> TopicConfig {
        let stored = config.overrides();
        TopicConfig::from_overrides(stored.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))))
            .expect("persisted overrides reparse")
    }

    fn described(config: &TopicConfig, node: &NodeConfig, name: &str) -> ConfigEntry {
        let entries = config.describe(node);
        let found = entries.into_iter().find(|entry| entry.name == name);
        found.expect("every known config is described")
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
            ("segment.ms", "60000"),
            ("max.message.bytes", "500"),
            ("message.timestamp.type", "LogAppendTime"),
            ("min.insync.replicas", "1"),
            ("cleanup.policy", "compact,delete"),
            ("compression.type", "producer"),
            ("min.cleanable.dirty.ratio", "0.25"),
            ("delete.retention.ms", "0"),
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "20"),
            ("remote.storage.enable", "false"),
            ("local.retention.ms", "500"),
            ("local.retention.bytes", "1024"),
            ("confluent.key.schema.validation", "true"),
            ("confluent.value.schema.validation", "TRUE"),
            ("confluent.key.subject.name.strategy", "RecordNameStrategy"),
            (
                "confluent.value.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
            ),
        ])
        .expect("all values are valid");
        assert_eq!(config.local_retention_ms(&node), 500);
        assert_eq!(config.local_retention_bytes(&node), 1024);
        assert_eq!(config.retention_ms(&node), 1000);
        assert_eq!(config.retention_bytes(&node), 2048);
        assert_eq!(config.segment_bytes(&node), 1024);
        assert_eq!(config.segment_ms(&node), 60_000);
        assert_eq!(config.max_message_bytes(&node), 500);
        assert_eq!(config.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(config.cleanup_policy(&node), CleanupPolicy::COMPACT_DELETE);
        assert_eq!(config.min_cleanable_dirty_ratio(&node), 0.25);
        assert_eq!(config.delete_retention_ms(&node), 0);
        assert_eq!(config.min_compaction_lag_ms(&node), 10);
        assert_eq!(config.max_compaction_lag_ms(&node), 20);
        assert_eq!(config.overrides().len(), TOPIC_CONFIG_NAMES.len());
        assert_eq!(reparse(&config), config);
        assert!(config.describe(&node).iter().all(|entry| !entry.is_default));
    }

    // Goal: bad configs are refused with a message naming the key. Method: one bad value
    // per rule (unknown key, bad number, below minimum, bad enum, null).
    #[test]
    fn invalid_configs_are_refused() {
        assert!(message(&[("flush.bananas", "1")]).contains("Unknown topic config name"));
        assert!(message(&[("retention.ms", "soon")]).contains("retention.ms"));
        assert!(message(&[("segment.bytes", "3")]).contains("at least 14"));
        assert!(message(&[("message.timestamp.type", "Now")]).contains("CreateTime"));
        assert!(message(&[("compression.type", "zstd")]).contains("producer"));
        let null = TopicConfig::from_overrides([("retention.ms", None)]).expect_err("null");
        assert!(null.message.contains("Null value"));
    }

    // Goal: `cleanup.policy` takes Kafka's lists, spaces tolerated, in either order, and
    // persists canonically. Method: parse each spelling, compare the policy and the
    // persisted and described string.
    #[test]
    fn cleanup_policy_accepts_kafkas_lists() {
        let node = NodeConfig::default();
        let cases = [
            ("delete", CleanupPolicy::DELETE, "delete"),
            ("compact", CleanupPolicy::COMPACT, "compact"),
            (
                "compact,delete",
                CleanupPolicy::COMPACT_DELETE,
                "compact,delete",
            ),
            (
                "delete,compact",
                CleanupPolicy::COMPACT_DELETE,
                "compact,delete",
            ),
            (
                " delete , compact ",
                CleanupPolicy::COMPACT_DELETE,
                "compact,delete",
            ),
        ];
        for (value, policy, canonical) in cases {
            let config = parse(&[("cleanup.policy", value)]).expect("a valid policy");
            assert_eq!(config.cleanup_policy, Some(policy), "{value:?}");
            let stored = config.overrides();
            let persisted = stored.get("cleanup.policy").map(String::as_str);
            assert_eq!(persisted, Some(canonical), "{value:?}");
            assert_eq!(reparse(&config), config, "{value:?}");
            let entry = described(&config, &node, "cleanup.policy");
            assert_eq!(entry.value, canonical);
            assert!(!entry.is_default);
        }
    }

    // Goal: a topic persisted before compaction existed (its only cleanup override was
    // `cleanup.policy=delete`, the one value then accepted) loads as the delete policy.
    // Method: from_overrides over the old record's exact pairs.
    #[test]
    fn old_persisted_delete_policy_still_loads() {
        let old = [
            ("cleanup.policy", Some("delete")),
            ("retention.ms", Some("5")),
        ];
        let config = TopicConfig::from_overrides(old).expect("old records load");
        assert_eq!(config.cleanup_policy, Some(CleanupPolicy::DELETE));
        assert_eq!(config.retention_ms, Some(5));
        let stored = config.overrides();
        assert_eq!(
            stored.get("cleanup.policy").map(String::as_str),
            Some("delete")
        );
    }

    // Goal: an empty list, an empty item, a duplicate and unknown or miscased words are
    // refused with INVALID_CONFIG messages naming config and value. Method: one per rule.
    #[test]
    fn cleanup_policy_refusals_name_the_value() {
        let cases = [
            ("", "must not be empty"),
            (" ", "must not be empty"),
            ("delete,", "an item of the list is empty"),
            ("shred", "unknown policy \"shred\""),
            ("compact,shred", "unknown policy \"shred\""),
            ("Delete", "unknown policy \"Delete\""),
            ("delete,delete", "policy \"delete\" is listed twice"),
        ];
        for (value, reason) in cases {
            let refused = message(&[("cleanup.policy", value)]);
            assert!(
                refused.starts_with(&format!(
                    "Invalid value {} for configuration cleanup.policy",
                    value.trim()
                )),
                "{value:?} gave {refused:?}"
            );
            assert!(refused.contains(reason), "{value:?} gave {refused:?}");
        }
    }

    // Goal: `min.cleanable.dirty.ratio` is a DOUBLE in 0..=1 (bounds included) that
    // persists and describes as Java prints doubles. Method: bounds, a fraction, -0,
    // exponent form; then NaN, infinity, out of range and text are refused.
    #[test]
    fn dirty_ratio_is_a_double_between_0_and_1() {
        let node = NodeConfig::default();
        let accepted = [
            ("0", 0.0, "0.0"),
            ("-0", 0.0, "0.0"),
            ("1", 1.0, "1.0"),
            ("0.75", 0.75, "0.75"),
            ("1e-1", 0.1, "0.1"),
        ];
        for (value, ratio, shown) in accepted {
            let config = parse(&[("min.cleanable.dirty.ratio", value)]).expect("in range");
            assert_eq!(config.min_cleanable_dirty_ratio(&node), ratio, "{value:?}");
            let entry = described(&config, &node, "min.cleanable.dirty.ratio");
            assert_eq!(entry.value, shown, "{value:?}");
            assert_eq!(entry.config_type, config_type::DOUBLE);
            assert_eq!(reparse(&config), config, "{value:?}");
        }
        let between = "Value must be a number between 0 and 1 inclusive";
        for value in ["1.01", "-0.1", "NaN", "inf"] {
            let refused = message(&[("min.cleanable.dirty.ratio", value)]);
            let expected = format!(
                "Invalid value {value} for configuration min.cleanable.dirty.ratio: {between}"
            );
            assert_eq!(refused, expected);
        }
        let text = message(&[("min.cleanable.dirty.ratio", "half")]);
        assert!(text.ends_with("Not a number of type DOUBLE"), "{text}");
    }

    // Goal: the compaction times and segment.ms take Kafka's LONG ranges (delete.retention
    // and min lag >= 0, max lag and segment.ms >= 1). Method: the lowest accepted value
    // and one below it for each, checking the message.
    #[test]
    fn compaction_times_have_kafkas_minimums() {
        let node = NodeConfig::default();
        let minimums = [
            ("delete.retention.ms", 0),
            ("min.compaction.lag.ms", 0),
            ("max.compaction.lag.ms", 1),
            ("segment.ms", 1),
        ];
        for (name, min) in minimums {
            let lowest = min.to_string();
            let config = parse(&[(name, &lowest)]).expect("the minimum is accepted");
            let entry = described(&config, &node, name);
            assert_eq!(entry.value, lowest, "{name}");
            assert_eq!(entry.config_type, config_type::LONG, "{name}");
            let below = (min - 1).to_string();
            let refused = message(&[(name, &below)]);
            let expected = format!(
                "Invalid value {below} for configuration {name}: Value must be at least {min}"
            );
            assert_eq!(refused, expected);
        }
        let huge = message(&[("segment.ms", "9223372036854775808")]);
        assert!(huge.ends_with("Not a number of type LONG"), "{huge}");
    }

    // Goal: Kafka's rule min.compaction.lag.ms <= max.compaction.lag.ms, between overrides
    // (from_overrides) and against the broker's defaults (check_against). Method: equal
    // lags pass; a larger min is refused with Kafka's message, alone or against a node
    // whose max is smaller.
    #[test]
    fn min_compaction_lag_must_not_exceed_max() {
        let equal = [
            ("min.compaction.lag.ms", "7"),
            ("max.compaction.lag.ms", "7"),
        ];
        parse(&equal).expect("min == max is accepted");
        let refused = message(&[
            ("min.compaction.lag.ms", "8"),
            ("max.compaction.lag.ms", "7"),
        ]);
        assert_eq!(
            refused,
            "conflict topic config setting min.compaction.lag.ms (8) > max.compaction.lag.ms (7)"
        );
        let node = NodeConfig {
            max_compaction_lag_ms: 100,
            ..NodeConfig::default()
        };
        let min_only = parse(&[("min.compaction.lag.ms", "101")]).expect("no max overridden");
        let error = min_only.check_against(&node).expect_err("node max is 100");
        assert!(error
            .message
            .contains("(101) > max.compaction.lag.ms (100)"));
        let fits = parse(&[("min.compaction.lag.ms", "100")]).expect("valid");
        assert_eq!(fits.check_against(&node), Ok(()));
    }

    // Goal: the active segment of a compacted topic rolls by max.compaction.lag.ms when
    // that is sooner than segment.ms (Kafka's maxSegmentMs); a delete-only topic ignores
    // the lag. Method: the same lags under both policies.
    #[test]
    fn segment_roll_follows_max_compaction_lag_when_compacting() {
        let node = NodeConfig::default();
        let lags = |policy| {
            parse(&[
                ("cleanup.policy", policy),
                ("segment.ms", "1000"),
                ("max.compaction.lag.ms", "300"),
            ])
            .expect("valid")
        };
        assert_eq!(lags("compact").segment_roll_ms(&node), 300);
        assert_eq!(lags("compact,delete").segment_roll_ms(&node), 300);
        assert_eq!(lags("delete").segment_roll_ms(&node), 1000);
        let default = TopicConfig::default();
        assert_eq!(default.segment_roll_ms(&node), 604_800_000);
    }

    // Goal: without overrides every entry reports the node default as default, with
    // Kafka's config types. Method: a node with non-default values, then its describe.
    #[test]
    fn defaults_come_from_the_node() {
        let node = NodeConfig {
            retention_ms: 42,
            segment_ms: 43,
            cleanup_policy: CleanupPolicy::COMPACT,
            min_cleanable_dirty_ratio: DirtyRatio::new(0.125).expect("in range"),
            delete_retention_ms: 44,
            min_compaction_lag_ms: 45,
            max_compaction_lag_ms: 46,
            ..NodeConfig::default()
        };
        let config = TopicConfig::default();
        let entries = config.describe(&node);
        assert_eq!(entries.len(), TOPIC_CONFIG_NAMES.len());
        assert!(entries.iter().all(|entry| entry.is_default));
        let names: Vec<&str> = entries.iter().map(|entry| entry.name).collect();
        assert_eq!(names, TOPIC_CONFIG_NAMES);
        let shown = |name| {
            let entry = described(&config, &node, name);
            (entry.value, entry.config_type)
        };
        use config_type::{DOUBLE, LIST, LONG};
        assert_eq!(shown("retention.ms"), ("42".into(), LONG));
        assert_eq!(shown("segment.ms"), ("43".into(), LONG));
        assert_eq!(shown("cleanup.policy"), ("compact".into(), LIST));
        assert_eq!(shown("min.cleanable.dirty.ratio"), ("0.125".into(), DOUBLE));
        assert_eq!(shown("delete.retention.ms"), ("44".into(), LONG));
        assert_eq!(shown("min.compaction.lag.ms"), ("45".into(), LONG));
        assert_eq!(shown("max.compaction.lag.ms"), ("46".into(), LONG));
        assert_eq!(config.cleanup_policy(&node), CleanupPolicy::COMPACT);
        assert_eq!(config.min_cleanable_dirty_ratio(&node), 0.125);
        assert!(config.overrides().is_empty());
    }

    // Goal: Kafka's defaults reach DescribeConfigs through NodeConfig::default. Method:
    // describe an override-free topic on a default node and read each new entry.
    #[test]
    fn kafka_defaults_are_described() {
        let node = NodeConfig::default();
        let config = TopicConfig::default();
        let value = |name| described(&config, &node, name).value;
        assert_eq!(value("cleanup.policy"), "delete");
        assert_eq!(value("min.cleanable.dirty.ratio"), "0.5");
        assert_eq!(value("delete.retention.ms"), "86400000");
        assert_eq!(value("min.compaction.lag.ms"), "0");
        assert_eq!(value("max.compaction.lag.ms"), "9223372036854775807");
        assert_eq!(value("segment.ms"), "604800000");
    }

    // Goal: the schema validation configs are BOOLEANs (off by default) and the strategies
    // take Confluent's short and class names, persist and describe by the short name, and
    // turn into the topic's Validation only for the sides switched on. Method: defaults,
    // each spelling, then refusals naming the config.
    #[test]
    fn schema_validation_configs_parse() {
        let node = NodeConfig::default();
        let default = TopicConfig::default();
        assert_eq!(default.schema_validation(), None);
        let shown = |config: &TopicConfig, name| described(config, &node, name);
        let entry = shown(&default, "confluent.value.schema.validation");
        assert_eq!((entry.value.as_str(), entry.is_default), ("false", true));
        assert_eq!(entry.config_type, config_type::BOOLEAN);
        let entry = shown(&default, "confluent.key.subject.name.strategy");
        assert_eq!(entry.value, "TopicNameStrategy");
        assert_eq!(entry.config_type, config_type::STRING);

        let value_only = parse(&[("confluent.value.schema.validation", "true")]).expect("valid");
        let validation = value_only.schema_validation().expect("value side on");
        assert_eq!(validation.key, None);
        assert_eq!(validation.value, Some(SubjectNameStrategy::TopicName));

        let class = "io.confluent.kafka.serializers.subject.RecordNameStrategy";
        let both = parse(&[
            ("confluent.key.schema.validation", "True"),
            ("confluent.value.schema.validation", "false"),
            ("confluent.key.subject.name.strategy", class),
        ])
        .expect("valid");
        let validation = both.schema_validation().expect("key side on");
        assert_eq!(validation.key, Some(SubjectNameStrategy::RecordName));
        assert_eq!(validation.value, None);
        let stored = both.overrides();
        assert_eq!(
            stored
                .get("confluent.key.subject.name.strategy")
                .map(String::as_str),
            Some("RecordNameStrategy")
        );
        assert_eq!(reparse(&both), both);
        let entry = shown(&both, "confluent.key.schema.validation");
        assert_eq!((entry.value.as_str(), entry.is_default), ("true", false));

        let refused = message(&[("confluent.value.schema.validation", "yes")]);
        assert_eq!(
            refused,
            "Invalid value yes for configuration confluent.value.schema.validation: \
             Expected value to be either true or false"
        );
        let refused = message(&[("confluent.value.subject.name.strategy", "SubjectStrategy")]);
        assert!(
            refused.starts_with(
                "Invalid value SubjectStrategy for configuration \
                 confluent.value.subject.name.strategy: expected TopicNameStrategy"
            ),
            "{refused}"
        );
    }

    // Goal: TOPIC_CONFIG_NAMES stays sorted and free of duplicates (DescribeConfigs lists
    // in its order). Method: compare with a sorted, deduplicated copy.
    #[test]
    fn topic_config_names_are_sorted() {
        let mut sorted = TOPIC_CONFIG_NAMES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, TOPIC_CONFIG_NAMES);
    }
}
