//! Domain types of DescribeLogDirs (key 35, v1-4): which partitions a broker stores, in
//! which log directory, and how many bytes each takes. Admin tools and consoles (Redpanda
//! Console, Kafbat UI, `kafka-log-dirs.sh --describe`) read topic sizes from it.
//!
//! Same invariant as the parent module: each type round-trips through the codec at every
//! version that carries all of its fields; a field a version lacks arrives as Kafka's schema
//! default (named on the field).

use crate::error::ErrorCode;

/// Weir's name for the remote store in a DescribeLogDirs answer (tiered storage): the
/// sizes listed under it are uploaded bytes, reported by each partition's leader.
pub const REMOTE_LOG_DIR: &str = "remote-storage";

/// Kafka's "volume size unknown" value of `total_bytes` and `usable_bytes` (their schema
/// default, and what versions before v4 decode to).
pub const VOLUME_BYTES_UNKNOWN: i64 = -1;

/// DescribeLogDirs request (key 35, v1-4). The version changes only the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLogDirsRequest {
    /// Partitions to describe; `None` = every partition the broker stores.
    pub topics: Option<Vec<DescribableLogDirTopic>>,
}

/// A topic and the partitions of it to describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribableLogDirTopic {
    /// Topic name.
    pub topic: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// DescribeLogDirs response: one result per log directory of the broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeLogDirsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Top-level error (v3+; NONE at v1-2).
    pub error: ErrorCode,
    /// The broker's log directories.
    pub results: Vec<LogDirResult>,
}

/// One log directory and the partitions stored in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirResult {
    /// Error of this directory (e.g. KAFKA_STORAGE_ERROR when it is offline), or NONE.
    pub error: ErrorCode,
    /// The directory's absolute path.
    pub log_dir: String,
    /// Its topics, each with the requested partitions stored here.
    pub topics: Vec<LogDirTopic>,
    /// Size of the volume holding it (v4+; [`VOLUME_BYTES_UNKNOWN`] otherwise).
    pub total_bytes: i64,
    /// Usable bytes left on that volume (v4+; [`VOLUME_BYTES_UNKNOWN`] otherwise).
    pub usable_bytes: i64,
}

/// A topic's partitions in one log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirTopic {
    /// Topic name.
    pub name: String,
    /// Its partitions stored in the directory.
    pub partitions: Vec<LogDirPartition>,
}

/// One partition replica's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogDirPartition {
    /// Partition index.
    pub partition: i32,
    /// Bytes of its log segments.
    pub partition_size: i64,
    /// How far the log end is behind the high watermark (Kafka's `max(hw - leo, 0)` for a
    /// current log).
    pub offset_lag: i64,
    /// True for a log AlterReplicaLogDirs is moving here (Weir has one directory: never).
    pub is_future_key: bool,
}

impl DescribeLogDirsRequest {
    /// The answer refusing the whole request: `error` at the top level (which only v3+
    /// carries; older versions read an empty answer) and no directories.
    pub fn error_response(&self, error: ErrorCode) -> DescribeLogDirsResponse {
        DescribeLogDirsResponse {
            throttle_time_ms: 0,
            error,
            results: Vec::new(),
        }
    }
}
