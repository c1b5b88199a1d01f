//! How the gateway's failures reach the client: every one is an [`EdgeError`] carrying a
//! Kafka error code and its name, so a browser sees the words a Kafka client would.

use weir_edge::EdgeError;
use weir_wire::error::ErrorCode;

use super::link::LinkClosed;

/// A Kafka error code as an edge error.
pub fn kafka_error(code: ErrorCode, message: impl Into<String>) -> EdgeError {
    EdgeError::new(code.0, code.name(), message)
}

/// The session ended while an operation waited on the node.
pub fn closed_error(_: LinkClosed) -> EdgeError {
    kafka_error(
        ErrorCode::NETWORK_EXCEPTION,
        "the broker closed the session",
    )
}

/// An answer of an unexpected type (a broker bug, not a client error).
pub fn unexpected(what: &str) -> EdgeError {
    kafka_error(
        ErrorCode::UNKNOWN_SERVER_ERROR,
        format!("unexpected answer to {what}"),
    )
}
