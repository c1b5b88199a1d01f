//! Error answers for APIs Weir does not serve (yet) but a client may still send.
//!
//! Kafka closes the connection on a request it cannot serve; Weir answers instead whenever
//! the API's response carries a top-level error code, so the client reads a reason
//! (UNSUPPORTED_VERSION) rather than a dropped connection. Responses without such a field
//! (per-item errors only) cannot say "no" honestly with an empty body, so for those the
//! caller still closes the connection, with a log line naming the API.
//!
//! Invariant: an answer is only produced when `error` lands in a field the client reads at
//! that version; otherwise `Err(Unsupported)` and nothing is written.

use bytes::BytesMut;
use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, ConsumerGroupHeartbeatResponse, CreateDelegationTokenResponse,
    DescribeClientQuotasResponse, DescribeDelegationTokenResponse,
    DescribeUserScramCredentialsResponse, EndTxnResponse, ExpireDelegationTokenResponse,
    GetTelemetrySubscriptionsResponse, ListTransactionsResponse, PushTelemetryResponse,
    RenewDelegationTokenResponse, SaslAuthenticateResponse, SaslHandshakeResponse,
};

use super::encode;
use crate::error::ErrorCode;
use crate::WireError;

/// Encodes the default response of `key` at `version` with its top-level error code set.
pub(super) fn encode_unserved(
    key: i16,
    error: ErrorCode,
    out: &mut BytesMut,
    version: i16,
) -> Result<(), WireError> {
    macro_rules! with_error {
        ($response:ty) => {{
            let mut response = <$response>::default();
            response.error_code = error.0;
            encode(&response, out, version)
        }};
    }
    match key {
        17 => with_error!(SaslHandshakeResponse),
        25 => with_error!(AddOffsetsToTxnResponse),
        26 => with_error!(EndTxnResponse),
        36 => with_error!(SaslAuthenticateResponse),
        38 => with_error!(CreateDelegationTokenResponse),
        39 => with_error!(RenewDelegationTokenResponse),
        40 => with_error!(ExpireDelegationTokenResponse),
        41 => with_error!(DescribeDelegationTokenResponse),
        48 => with_error!(DescribeClientQuotasResponse),
        50 => with_error!(DescribeUserScramCredentialsResponse),
        66 => with_error!(ListTransactionsResponse),
        68 => with_error!(ConsumerGroupHeartbeatResponse),
        71 => with_error!(GetTelemetrySubscriptionsResponse),
        72 => with_error!(PushTelemetryResponse),
        _ => Err(WireError::Unsupported(format!(
            "no error response for api key {key}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the answer carries the error where the client reads it. Method: encode
    // SaslHandshake v1 and check the body's first field (error_code) is 35.
    #[test]
    fn top_level_error_is_written() {
        let mut out = BytesMut::new();
        encode_unserved(17, ErrorCode::UNSUPPORTED_VERSION, &mut out, 1).expect("encodes");
        assert_eq!(&out[..2], &35i16.to_be_bytes());
    }

    // Goal: APIs without a top-level error are refused, not answered with an empty body.
    // Method: key 9999 and an unknown key give Unsupported and write nothing.
    #[test]
    fn responses_without_a_top_level_error_are_refused() {
        let mut out = BytesMut::new();
        assert!(encode_unserved(9999, ErrorCode::UNSUPPORTED_VERSION, &mut out, 0).is_err());
        assert!(out.is_empty());
    }
}
