//! Goal: the SASL and SCRAM-credential APIs survive the wire at every served version, both
//! directions (server decode of what a client encodes, client decode of what the server
//! encodes); SaslAuthenticate's session lifetime exists only from v1.
//! Method: one representative value per API and version, full equality after a round trip.

use bytes::{Bytes, BytesMut};
use weir_wire::codec::{
    api_key, decode_request, decode_response, encode_request, encode_response, Decoded,
    RequestHeader, SUPPORTED_APIS,
};
use weir_wire::domain::sasl::*;
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

fn request(key: i16, v: i16) -> ApiRequest {
    match key {
        api_key::SASL_HANDSHAKE => ApiRequest::SaslHandshake(SaslHandshakeRequest {
            mechanism: "SCRAM-SHA-512".into(),
            version: v,
        }),
        api_key::SASL_AUTHENTICATE => ApiRequest::SaslAuthenticate(SaslAuthenticateRequest {
            auth_bytes: Bytes::from_static(b"n,,n=alice,r=abc"),
        }),
        api_key::DESCRIBE_USER_SCRAM_CREDENTIALS => {
            ApiRequest::DescribeUserScramCredentials(DescribeUserScramCredentialsRequest {
                users: Some(vec!["alice".into(), "bob".into()]),
            })
        }
        api_key::ALTER_USER_SCRAM_CREDENTIALS => {
            ApiRequest::AlterUserScramCredentials(AlterUserScramCredentialsRequest {
                deletions: vec![ScramCredentialDeletion {
                    name: "bob".into(),
                    mechanism: scram_mechanism::SCRAM_SHA_256,
                }],
                upsertions: vec![ScramCredentialUpsertion {
                    name: "alice".into(),
                    mechanism: scram_mechanism::SCRAM_SHA_512,
                    iterations: 8192,
                    salt: Bytes::from_static(b"salt"),
                    salted_password: Bytes::from_static(&[7; 64]),
                }],
            })
        }
        other => panic!("not a SASL key: {other}"),
    }
}

fn response(key: i16, v: i16) -> ApiResponse {
    match key {
        api_key::SASL_HANDSHAKE => ApiResponse::SaslHandshake(SaslHandshakeResponse {
            error: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
        }),
        api_key::SASL_AUTHENTICATE => ApiResponse::SaslAuthenticate(SaslAuthenticateResponse {
            error: ErrorCode::SASL_AUTHENTICATION_FAILED,
            error_message: Some("Authentication failed".into()),
            auth_bytes: Bytes::from_static(b"v=xyz"),
            session_lifetime_ms: if v >= 1 { 60_000 } else { 0 },
        }),
        api_key::DESCRIBE_USER_SCRAM_CREDENTIALS => {
            ApiResponse::DescribeUserScramCredentials(DescribeUserScramCredentialsResponse {
                throttle_time_ms: 0,
                error: ErrorCode::NONE,
                error_message: None,
                results: vec![
                    UserScramCredentialsResult {
                        user: "alice".into(),
                        error: ErrorCode::NONE,
                        error_message: None,
                        credentials: vec![(1, 4096), (2, 8192)],
                    },
                    UserScramCredentialsResult {
                        user: "bob".into(),
                        error: ErrorCode::RESOURCE_NOT_FOUND,
                        error_message: Some("no such user".into()),
                        credentials: Vec::new(),
                    },
                ],
            })
        }
        api_key::ALTER_USER_SCRAM_CREDENTIALS => {
            ApiResponse::AlterUserScramCredentials(AlterUserScramCredentialsResponse {
                throttle_time_ms: 0,
                results: vec![AlterUserScramCredentialsResult {
                    user: "alice".into(),
                    error: ErrorCode::UNACCEPTABLE_CREDENTIAL,
                    error_message: Some("Too few iterations".into()),
                }],
            })
        }
        other => panic!("not a SASL key: {other}"),
    }
}

fn strip_prefix(out: BytesMut) -> Bytes {
    out.freeze().slice(4..)
}

#[test]
fn every_sasl_api_round_trips_at_every_served_version() {
    let keys = [
        api_key::SASL_HANDSHAKE,
        api_key::SASL_AUTHENTICATE,
        api_key::DESCRIBE_USER_SCRAM_CREDENTIALS,
        api_key::ALTER_USER_SCRAM_CREDENTIALS,
    ];
    let apis: Vec<_> = (SUPPORTED_APIS.iter().copied())
        .filter(|e| keys.contains(&e.0))
        .collect();
    assert_eq!(apis.len(), keys.len(), "every SASL API is served");
    for (key, min, max) in apis {
        for v in min..=max {
            let header = RequestHeader {
                api_key: key,
                api_version: v,
                correlation_id: 9,
                client_id: Some("rt".into()),
            };
            let sent = request(key, v);
            let mut out = BytesMut::new();
            encode_request(&header, &sent, &mut out).expect("encode request");
            let (got_header, decoded) = decode_request(strip_prefix(out)).expect("decode request");
            assert_eq!(got_header, header, "key {key} v{v}");
            match decoded {
                Decoded::Api(got) => assert_eq!(got, sent, "key {key} v{v} request"),
                other => panic!("key {key} v{v}: {other:?}"),
            }
            let answer = response(key, v);
            let mut out = BytesMut::new();
            encode_response(&header, &answer, &mut out).expect("encode response");
            let got = decode_response(&header, strip_prefix(out)).expect("decode response");
            assert_eq!(got, answer, "key {key} v{v} response");
        }
    }
}
