//! The error the HTTP platform answers with (authentication, an unavailable broker): a
//! status and Confluent's body, `{"error_code": N, "message": "..."}`, the shape the REST
//! proxy's and the schema registry's own errors also have (each maps Kafka errors to its
//! own API's codes: `rest::error::RestError::kafka`, the registry's `RegistryError`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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
