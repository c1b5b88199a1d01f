//! Goal: the ACL APIs (DescribeAcls 29, CreateAcls 30, DeleteAcls 31) survive the wire at
//! every served version (v1-3), both directions, with every enum's codes preserved and an
//! undefined code arriving as `Unknown` (the broker refuses it, the codec must not).
//! Method: one representative value per API and version, full equality after a round trip;
//! a raw CreateAcls body with operation code 99 decodes to `AclOperation::Unknown`.

use bytes::{Bytes, BytesMut};
use weir_wire::codec::{
    api_key, decode_request, decode_response, encode_request, encode_response, Decoded,
    RequestHeader, SUPPORTED_APIS,
};
use weir_wire::domain::acl::*;
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;

fn binding(op: AclOperation, permission: AclPermissionType) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::TransactionalId,
        resource_name: "tx-".into(),
        pattern_type: PatternType::Prefixed,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: op,
        permission_type: permission,
    }
}

fn filter() -> AclFilter {
    AclFilter {
        resource_type: ResourceType::Topic,
        resource_name: Some("orders".into()),
        pattern_type: PatternType::Match,
        principal: None,
        host: Some("10.0.0.1".into()),
        operation: AclOperation::Any,
        permission_type: AclPermissionType::Deny,
    }
}

fn request(key: i16) -> ApiRequest {
    match key {
        api_key::DESCRIBE_ACLS => {
            ApiRequest::DescribeAcls(DescribeAclsRequest { filter: filter() })
        }
        api_key::CREATE_ACLS => ApiRequest::CreateAcls(CreateAclsRequest {
            creations: vec![
                binding(AclOperation::Write, AclPermissionType::Allow),
                binding(AclOperation::IdempotentWrite, AclPermissionType::Deny),
            ],
        }),
        api_key::DELETE_ACLS => ApiRequest::DeleteAcls(DeleteAclsRequest {
            filters: vec![filter(), AclFilter::any()],
        }),
        other => panic!("not an ACL key: {other}"),
    }
}

fn response(key: i16) -> ApiResponse {
    match key {
        api_key::DESCRIBE_ACLS => ApiResponse::DescribeAcls(DescribeAclsResponse {
            throttle_time_ms: 3,
            error: ErrorCode::NONE,
            error_message: None,
            resources: vec![AclResource {
                resource_type: ResourceType::Group,
                resource_name: "g".into(),
                pattern_type: PatternType::Literal,
                acls: vec![AclDescription {
                    principal: "User:*".into(),
                    host: "*".into(),
                    operation: AclOperation::Read,
                    permission_type: AclPermissionType::Allow,
                }],
            }],
        }),
        api_key::CREATE_ACLS => ApiResponse::CreateAcls(CreateAclsResponse {
            throttle_time_ms: 0,
            results: vec![
                AclResult::default(),
                AclResult {
                    error: ErrorCode::INVALID_REQUEST,
                    error_message: Some("bad principal".into()),
                },
            ],
        }),
        api_key::DELETE_ACLS => ApiResponse::DeleteAcls(DeleteAclsResponse {
            throttle_time_ms: 0,
            filter_results: vec![DeleteAclsFilterResult {
                error: ErrorCode::NONE,
                error_message: None,
                matching_acls: vec![DeleteAclsMatchingAcl {
                    error: ErrorCode::NONE,
                    error_message: None,
                    acl: binding(AclOperation::All, AclPermissionType::Allow),
                }],
            }],
        }),
        other => panic!("not an ACL key: {other}"),
    }
}

fn strip_prefix(out: BytesMut) -> Bytes {
    out.freeze().slice(4..)
}

fn header(key: i16, v: i16) -> RequestHeader {
    RequestHeader {
        api_key: key,
        api_version: v,
        correlation_id: 9,
        client_id: Some("rt".into()),
    }
}

#[test]
fn every_acl_api_round_trips_at_every_served_version() {
    let keys = [
        api_key::DESCRIBE_ACLS,
        api_key::CREATE_ACLS,
        api_key::DELETE_ACLS,
    ];
    let apis: Vec<_> = (SUPPORTED_APIS.iter().copied())
        .filter(|e| keys.contains(&e.0))
        .collect();
    assert_eq!(apis, vec![(29, 1, 3), (30, 1, 3), (31, 1, 3)]);
    for (key, min, max) in apis {
        for v in min..=max {
            let header = header(key, v);
            let sent = request(key);
            let mut out = BytesMut::new();
            encode_request(&header, &sent, &mut out).expect("encode request");
            let (got_header, decoded) = decode_request(strip_prefix(out)).expect("decode request");
            assert_eq!(got_header, header, "key {key} v{v}");
            match decoded {
                Decoded::Api(got) => assert_eq!(got, sent, "key {key} v{v} request"),
                other => panic!("key {key} v{v}: {other:?}"),
            }
            let answer = response(key);
            let mut out = BytesMut::new();
            encode_response(&header, &answer, &mut out).expect("encode response");
            let got = decode_response(&header, strip_prefix(out)).expect("decode response");
            assert_eq!(got, answer, "key {key} v{v} response");
        }
    }
}

#[test]
fn undefined_enum_codes_decode_as_unknown() {
    let header = header(api_key::CREATE_ACLS, 1);
    let sent = ApiRequest::CreateAcls(CreateAclsRequest {
        creations: vec![binding(AclOperation::Read, AclPermissionType::Allow)],
    });
    let mut out = BytesMut::new();
    encode_request(&header, &sent, &mut out).expect("encode request");
    // v1 (not flexible) ends with the creation's operation (i8) and permission (i8).
    let last = out.len() - 1;
    out[last - 1] = 99;
    out[last] = 0;
    let (_, decoded) = decode_request(strip_prefix(out)).expect("decode request");
    let Decoded::Api(ApiRequest::CreateAcls(got)) = decoded else {
        panic!("not CreateAcls: {decoded:?}");
    };
    assert_eq!(got.creations[0].operation, AclOperation::Unknown);
    assert_eq!(got.creations[0].permission_type, AclPermissionType::Unknown);
    assert_eq!(got.creations[0].principal, "User:alice");
}
