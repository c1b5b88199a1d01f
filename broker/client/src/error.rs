//! The client's error type. Kafka error codes keep their code and upper-case name (users
//! search for `NOT_LEADER_OR_FOLLOWER`, not for a Rust variant name).
//!
//! Invariant: [`ClientError`] is `Clone`, because one failed batch fails every record in it
//! and each record's caller gets its own copy.

use weir_wire::error::ErrorCode;
use weir_wire::WireError;

/// Why a client operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The broker answered with a Kafka error code.
    #[error("{code} for {context}{}", display_message(.message))]
    Kafka {
        /// The code; its `name()` is Kafka's name for it.
        code: ErrorCode,
        /// What the request was about (a topic-partition, a topic, an API).
        context: String,
        /// The broker's error message, if it sent one.
        message: Option<String>,
    },
    /// Connecting, reading or writing failed, or the connection closed.
    #[error("network error with {broker}: {reason}")]
    Network {
        /// The broker's address.
        broker: String,
        /// What went wrong.
        reason: String,
    },
    /// No answer within the configured time.
    #[error("timed out after {timeout_ms} ms: {context}")]
    Timeout {
        /// What was waited for.
        context: String,
        /// How long.
        timeout_ms: u64,
    },
    /// Bytes from the broker could not be decoded, or a request could not be encoded.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The broker supports no version of an API this operation needs.
    #[error("broker {broker} supports no usable version of API key {api_key}")]
    UnsupportedApi {
        /// The broker's address.
        broker: String,
        /// The API key.
        api_key: i16,
    },
    /// The producer's buffer is full; wait with `Producer::ready` and send again.
    #[error("producer buffer full: {buffered_bytes} bytes buffered, limit {limit_bytes}")]
    BufferFull {
        /// Bytes buffered now.
        buffered_bytes: usize,
        /// The configured limit.
        limit_bytes: usize,
    },
    /// No broker could be reached (bootstrap failed or no leader is known).
    #[error("no broker available: {0}")]
    NoBroker(String),
    /// A caller-supplied argument is invalid (unknown partition, empty topic, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The consumer has no position for a partition and `auto.offset.reset` is `none`.
    #[error("no valid offset for {0} and auto.offset.reset is none")]
    NoOffset(String),
    /// The client was closed.
    #[error("client closed")]
    Closed,
}

impl ClientError {
    /// A Kafka error with context and no message.
    pub fn kafka(code: ErrorCode, context: impl Into<String>) -> ClientError {
        ClientError::Kafka {
            code,
            context: context.into(),
            message: None,
        }
    }

    /// The Kafka error code, if this error carries one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when trying again (after a metadata refresh) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => is_retriable_code(*code),
            ClientError::Network { .. }
            | ClientError::Timeout { .. }
            | ClientError::NoBroker(_) => true,
            _ => false,
        }
    }

    /// True when the error suggests our view of leaders is stale.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => needs_metadata_refresh(*code),
            ClientError::Network { .. }
            | ClientError::Timeout { .. }
            | ClientError::NoBroker(_) => true,
            _ => false,
        }
    }
}

impl From<WireError> for ClientError {
    fn from(error: WireError) -> ClientError {
        ClientError::Protocol(error.to_string())
    }
}

/// Kafka's `RetriableException` subclasses, by code.
pub fn is_retriable_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::CORRUPT_MESSAGE
            | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::REQUEST_TIMED_OUT
            | ErrorCode::REPLICA_NOT_AVAILABLE
            | ErrorCode::NETWORK_EXCEPTION
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::NOT_ENOUGH_REPLICAS
            | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND
            | ErrorCode::NOT_CONTROLLER
            | ErrorCode::KAFKA_STORAGE_ERROR
            | ErrorCode::FENCED_LEADER_EPOCH
            | ErrorCode::UNKNOWN_LEADER_EPOCH
            | ErrorCode::OFFSET_NOT_AVAILABLE
            | ErrorCode::THROTTLING_QUOTA_EXCEEDED
            | ErrorCode::UNKNOWN_TOPIC_ID
    )
}

/// Codes after which the client must re-learn leaders before retrying.
pub fn needs_metadata_refresh(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::REPLICA_NOT_AVAILABLE
            | ErrorCode::NETWORK_EXCEPTION
            | ErrorCode::NOT_CONTROLLER
            | ErrorCode::KAFKA_STORAGE_ERROR
            | ErrorCode::FENCED_LEADER_EPOCH
            | ErrorCode::UNKNOWN_LEADER_EPOCH
            | ErrorCode::UNKNOWN_TOPIC_ID
    )
}

fn display_message(message: &Option<String>) -> String {
    match message {
        Some(text) if !text.is_empty() => format!(": {text}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    // Goal: errors print Kafka's names and classify retriability as the Java client does.
    // Method: format and classify a few representative errors.
    use super::*;

    #[test]
    fn display_and_classification() {
        let error = ClientError::Kafka {
            code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
            context: "t-0".into(),
            message: Some("moved".into()),
        };
        assert_eq!(
            error.to_string(),
            "NOT_LEADER_OR_FOLLOWER (6) for t-0: moved"
        );
        assert!(error.is_retriable());
        assert!(error.needs_metadata_refresh());
        let fatal = ClientError::kafka(ErrorCode::TOPIC_AUTHORIZATION_FAILED, "t");
        assert!(!fatal.is_retriable());
        assert_eq!(fatal.code(), Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED));
        assert!(ClientError::Network {
            broker: "b".into(),
            reason: "eof".into()
        }
        .is_retriable());
        assert!(!ClientError::InvalidArgument("x".into()).is_retriable());
    }
}
