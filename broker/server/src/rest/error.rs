//! Confluent's error bodies: an HTTP status and `{"error_code": N, "message": "..."}`,
//! where `N` is the status itself or the status times 100 plus a sub-code (40401 topic not
//! found, 40403 consumer instance not found, 42202 invalid offset or partition, ...).
//!
//! Every failure of the REST proxy is a [`RestError`]; broker answers (Kafka error codes,
//! the gateway's `EdgeError`s) are mapped here once, so handlers never pick statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use weir_edge::EdgeError;
use weir_wire::error::ErrorCode;

/// Topic not found.
pub const TOPIC_NOT_FOUND: u32 = 40401;
/// Partition not found.
pub const PARTITION_NOT_FOUND: u32 = 40402;
/// Consumer instance not found (never created, deleted, or expired).
pub const CONSUMER_INSTANCE_NOT_FOUND: u32 = 40403;
/// No leader for the partition right now.
pub const LEADER_NOT_AVAILABLE: u32 = 40404;
/// Consumer group not found.
pub const GROUP_NOT_FOUND: u32 = 40405;
/// The consumer's format does not match the Accept header of a records request.
pub const CONSUMER_FORMAT_MISMATCH: u32 = 40601;
/// A consumer instance of that name already exists in the group.
pub const CONSUMER_ALREADY_EXISTS: u32 = 40902;
/// The topic already exists.
pub const TOPIC_ALREADY_EXISTS: u32 = 40002;
/// Records too large.
pub const RECORD_TOO_LARGE: u32 = 42201;
/// Invalid offset or partition.
pub const INVALID_OFFSET_OR_PARTITION: u32 = 42202;
/// Invalid consumer configuration.
pub const INVALID_CONSUMER_CONFIG: u32 = 42204;
/// Key or value data that cannot be converted (bad base64, a STRING that is not a string).
pub const INVALID_DATA: u32 = 42205;
/// JSON data that does not match its schema (Confluent's "Conversion of JSON ... failed").
pub const DATA_DOES_NOT_MATCH_SCHEMA: u32 = 42203;
/// v2: records with keys in a schema format, but no key_schema or key_schema_id.
pub const KEY_SCHEMA_MISSING: u32 = 42201;
/// v2: records with values in a schema format, but no value_schema or value_schema_id.
pub const VALUE_SCHEMA_MISSING: u32 = 42202;
/// AVRO/PROTOBUF/JSONSCHEMA data while the broker's schema registry is off.
pub const NEEDS_SCHEMA_REGISTRY: u32 = 42207;
/// A Kafka error that may succeed when retried.
pub const KAFKA_RETRIABLE: u32 = 50003;
/// Any other Kafka error.
pub const KAFKA_ERROR: u32 = 50002;

/// A REST proxy failure as Confluent reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} ({error_code}): {message}")]
pub struct RestError {
    /// HTTP status.
    pub status: StatusCode,
    /// Confluent's error code.
    pub error_code: u32,
    /// Human-readable detail.
    pub message: String,
}

impl RestError {
    /// An error with a status and an explicit Confluent code.
    pub fn new(status: StatusCode, error_code: u32, message: impl Into<String>) -> RestError {
        RestError {
            status,
            error_code,
            message: message.into(),
        }
    }

    /// An error whose Confluent code is its status (e.g. 400, 404, 415).
    pub fn status(status: StatusCode, message: impl Into<String>) -> RestError {
        RestError::new(status, u32::from(status.as_u16()), message)
    }

    /// 400: a body that is not the JSON the endpoint takes.
    pub fn bad_request(message: impl Into<String>) -> RestError {
        RestError::status(StatusCode::BAD_REQUEST, message)
    }

    /// 422 with a sub-code: well-formed JSON whose content is invalid.
    pub fn unprocessable(error_code: u32, message: impl Into<String>) -> RestError {
        RestError::new(StatusCode::UNPROCESSABLE_ENTITY, error_code, message)
    }

    /// 404 40401.
    pub fn topic_not_found(topic: &str) -> RestError {
        RestError::new(
            StatusCode::NOT_FOUND,
            TOPIC_NOT_FOUND,
            format!("Topic {topic} not found."),
        )
    }

    /// 404 40402.
    pub fn partition_not_found(topic: &str, partition: i32) -> RestError {
        RestError::new(
            StatusCode::NOT_FOUND,
            PARTITION_NOT_FOUND,
            format!("Partition {partition} of topic {topic} not found."),
        )
    }

    /// 404 40403.
    pub fn instance_not_found() -> RestError {
        RestError::new(
            StatusCode::NOT_FOUND,
            CONSUMER_INSTANCE_NOT_FOUND,
            "Consumer instance not found.",
        )
    }

    /// 415: the request's Content-Type is not one the endpoint takes.
    pub fn unsupported_media_type(found: &str, wanted: &str) -> RestError {
        RestError::status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("HTTP 415 Unsupported Media Type: got {found:?}, expected {wanted}"),
        )
    }

    /// The broker answered a Kafka error code about `what` (a topic, a group...).
    pub fn kafka(code: ErrorCode, message: impl Into<String>) -> RestError {
        let message = format!("{}: {}", code.name(), message.into());
        let (status, error_code) = match code {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION | ErrorCode::UNKNOWN_TOPIC_ID => {
                (StatusCode::NOT_FOUND, TOPIC_NOT_FOUND)
            }
            ErrorCode::LEADER_NOT_AVAILABLE => (StatusCode::NOT_FOUND, LEADER_NOT_AVAILABLE),
            ErrorCode::GROUP_ID_NOT_FOUND => (StatusCode::NOT_FOUND, GROUP_NOT_FOUND),
            ErrorCode::TOPIC_ALREADY_EXISTS => (StatusCode::BAD_REQUEST, TOPIC_ALREADY_EXISTS),
            ErrorCode::INVALID_TOPIC_EXCEPTION
            | ErrorCode::INVALID_PARTITIONS
            | ErrorCode::INVALID_REPLICATION_FACTOR
            | ErrorCode::INVALID_CONFIG
            | ErrorCode::INVALID_REQUEST
            | ErrorCode::INVALID_RECORD
            | ErrorCode::INVALID_GROUP_ID
            | ErrorCode::POLICY_VIOLATION => (StatusCode::BAD_REQUEST, 400),
            ErrorCode::MESSAGE_TOO_LARGE | ErrorCode::RECORD_LIST_TOO_LARGE => {
                (StatusCode::UNPROCESSABLE_ENTITY, RECORD_TOO_LARGE)
            }
            ErrorCode::OFFSET_OUT_OF_RANGE => (
                StatusCode::UNPROCESSABLE_ENTITY,
                INVALID_OFFSET_OR_PARTITION,
            ),
            ErrorCode::TOPIC_AUTHORIZATION_FAILED
            | ErrorCode::GROUP_AUTHORIZATION_FAILED
            | ErrorCode::CLUSTER_AUTHORIZATION_FAILED
            | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED => (StatusCode::FORBIDDEN, 40301),
            ErrorCode::SASL_AUTHENTICATION_FAILED => (StatusCode::UNAUTHORIZED, 40101),
            ErrorCode::NETWORK_EXCEPTION
            | ErrorCode::REQUEST_TIMED_OUT
            | ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::NOT_ENOUGH_REPLICAS
            | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::NOT_CONTROLLER => (StatusCode::INTERNAL_SERVER_ERROR, KAFKA_RETRIABLE),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, KAFKA_ERROR),
        };
        RestError::new(status, error_code, message)
    }
}

impl From<EdgeError> for RestError {
    fn from(error: EdgeError) -> RestError {
        RestError::kafka(ErrorCode(error.code), error.message)
    }
}

impl From<axum::extract::rejection::JsonRejection> for RestError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> RestError {
        RestError::bad_request(rejection.body_text())
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error_code": self.error_code,
            "message": self.message,
        });
        (self.status, Json(body)).into_response()
    }
}
