//! The error every HTTP service answers with: a status and Confluent's body,
//! `{"error_code": N, "message": "..."}` (the REST proxy's and the schema registry's shape).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use weir_wire::error::ErrorCode;

/// A refused HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} ({error_code}): {message}")]
pub struct HttpError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Confluent's error code (often the status, or the status and a two-digit detail,
    /// e.g. 40401 for an unknown subject or topic).
    pub error_code: u32,
    /// What went wrong, for a human.
    pub message: String,
}

impl HttpError {
    /// A refusal with `status`, Confluent `error_code` and `message`.
    pub fn new(status: StatusCode, error_code: u32, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            error_code,
            message: message.into(),
        }
    }

    /// 401: the request carries no valid credentials.
    pub fn unauthorized(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::UNAUTHORIZED, 40101, message)
    }

    /// 500 for what the client cannot fix (the broker stopping, an unexpected answer).
    pub fn internal(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, 50001, message)
    }

    /// 503: the broker is stopping or cannot be reached right now.
    pub fn unavailable(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE, 50301, message)
    }

    /// A Kafka error from the broker's own answer, as the REST proxy reports it: the
    /// status that fits the error and Confluent's code (status plus a detail digit pair),
    /// the Kafka error's name in the message.
    pub fn from_kafka(error: ErrorCode, message: impl Into<String>) -> HttpError {
        let (status, code) = match error {
            // Confluent's 40401: topic not found (40403 is a consumer instance).
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION | ErrorCode::UNKNOWN_TOPIC_ID => {
                (StatusCode::NOT_FOUND, 40401)
            }
            ErrorCode::GROUP_ID_NOT_FOUND => (StatusCode::NOT_FOUND, 40404),
            ErrorCode::TOPIC_AUTHORIZATION_FAILED
            | ErrorCode::GROUP_AUTHORIZATION_FAILED
            | ErrorCode::CLUSTER_AUTHORIZATION_FAILED
            | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED => (StatusCode::FORBIDDEN, 40301),
            ErrorCode::SASL_AUTHENTICATION_FAILED => (StatusCode::UNAUTHORIZED, 40101),
            ErrorCode::TOPIC_ALREADY_EXISTS => (StatusCode::BAD_REQUEST, 40002),
            ErrorCode::INVALID_PARTITIONS
            | ErrorCode::INVALID_REPLICATION_FACTOR
            | ErrorCode::INVALID_CONFIG
            | ErrorCode::INVALID_TOPIC_EXCEPTION
            | ErrorCode::INVALID_REQUEST
            | ErrorCode::POLICY_VIOLATION => (StatusCode::BAD_REQUEST, 40002),
            ErrorCode::INVALID_RECORD | ErrorCode::CORRUPT_MESSAGE => {
                (StatusCode::UNPROCESSABLE_ENTITY, 42206)
            }
            ErrorCode::MESSAGE_TOO_LARGE | ErrorCode::RECORD_LIST_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, 41301)
            }
            ErrorCode::REQUEST_TIMED_OUT
            | ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::NOT_ENOUGH_REPLICAS
            | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::NOT_CONTROLLER
            | ErrorCode::BROKER_NOT_AVAILABLE => (StatusCode::SERVICE_UNAVAILABLE, 50302),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, 50002),
        };
        let message = message.into();
        let message = if message.is_empty() {
            error.name().to_owned()
        } else {
            format!("{}: {message}", error.name())
        };
        HttpError::new(status, code, message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error_code": self.error_code,
            "message": self.message,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"weir\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_map_to_confluent_statuses_and_name_the_kafka_error() {
        // Goal: a client sees the status Confluent's proxy would give and the Kafka name.
        let unknown = HttpError::from_kafka(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, "t");
        assert_eq!(
            (unknown.status, unknown.error_code),
            (StatusCode::NOT_FOUND, 40401)
        );
        assert!(unknown.message.starts_with("UNKNOWN_TOPIC_OR_PARTITION"));
        let denied = HttpError::from_kafka(ErrorCode::TOPIC_AUTHORIZATION_FAILED, "");
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert_eq!(denied.message, "TOPIC_AUTHORIZATION_FAILED");
    }

    #[test]
    fn unauthorized_answers_carry_a_basic_challenge() {
        let response = HttpError::unauthorized("no").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers().get(header::WWW_AUTHENTICATE);
        assert_eq!(
            challenge,
            Some(&HeaderValue::from_static("Basic realm=\"weir\""))
        );
    }
}
