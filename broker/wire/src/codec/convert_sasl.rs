//! Conversions for SaslHandshake (key 17, v0-1), SaslAuthenticate (key 36, v0-2),
//! DescribeUserScramCredentials (key 50, v0) and AlterUserScramCredentials (key 51, v0).
//!
//! Same invariants as `convert.rs`: `*_from_domain(x, v)` sets only fields that exist at `v`
//! (SaslAuthenticate's `session_lifetime_ms` from v1), and `*_to_domain` copies every field.

use kafka_protocol::messages::{
    alter_user_scram_credentials_request as auscr, alter_user_scram_credentials_response as ausc,
    describe_user_scram_credentials_request as duscr,
    describe_user_scram_credentials_response as dusc, AlterUserScramCredentialsRequest,
    AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};

use super::convert_helpers::{osb, ost, sb, st};
use crate::domain::sasl as d;
use crate::error::ErrorCode;

pub(super) fn handshake_req_to_domain(k: SaslHandshakeRequest, v: i16) -> d::SaslHandshakeRequest {
    d::SaslHandshakeRequest {
        mechanism: st(&k.mechanism),
        version: v,
    }
}

pub(super) fn handshake_req_from_domain(x: &d::SaslHandshakeRequest) -> SaslHandshakeRequest {
    SaslHandshakeRequest::default().with_mechanism(sb(&x.mechanism))
}

pub(super) fn handshake_resp_from_domain(x: &d::SaslHandshakeResponse) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default()
        .with_error_code(x.error.0)
        .with_mechanisms(x.mechanisms.iter().map(|m| sb(m)).collect())
}

pub(super) fn handshake_resp_to_domain(k: SaslHandshakeResponse) -> d::SaslHandshakeResponse {
    d::SaslHandshakeResponse {
        error: ErrorCode(k.error_code),
        mechanisms: k.mechanisms.iter().map(st).collect(),
    }
}

pub(super) fn authenticate_req_to_domain(k: SaslAuthenticateRequest) -> d::SaslAuthenticateRequest {
    d::SaslAuthenticateRequest {
        auth_bytes: k.auth_bytes,
    }
}

pub(super) fn authenticate_req_from_domain(
    x: &d::SaslAuthenticateRequest,
) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest::default().with_auth_bytes(x.auth_bytes.clone())
}

pub(super) fn authenticate_resp_from_domain(
    x: &d::SaslAuthenticateResponse,
    v: i16,
) -> SaslAuthenticateResponse {
    let mut k = SaslAuthenticateResponse::default()
        .with_error_code(x.error.0)
        .with_error_message(osb(&x.error_message))
        .with_auth_bytes(x.auth_bytes.clone());
    if v >= 1 {
        k.session_lifetime_ms = x.session_lifetime_ms;
    }
    k
}

pub(super) fn authenticate_resp_to_domain(
    k: SaslAuthenticateResponse,
) -> d::SaslAuthenticateResponse {
    d::SaslAuthenticateResponse {
        error: ErrorCode(k.error_code),
        error_message: ost(&k.error_message),
        auth_bytes: k.auth_bytes,
        session_lifetime_ms: k.session_lifetime_ms,
    }
}

pub(super) fn describe_req_to_domain(
    k: DescribeUserScramCredentialsRequest,
) -> d::DescribeUserScramCredentialsRequest {
    d::DescribeUserScramCredentialsRequest {
        users: (k.users).map(|users| users.iter().map(|u| st(&u.name)).collect()),
    }
}

pub(super) fn describe_req_from_domain(
    x: &d::DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsRequest {
    let users = x.users.as_ref().map(|users| {
        (users.iter())
            .map(|u| duscr::UserName::default().with_name(sb(u)))
            .collect()
    });
    DescribeUserScramCredentialsRequest::default().with_users(users)
}

pub(super) fn describe_resp_from_domain(
    x: &d::DescribeUserScramCredentialsResponse,
) -> DescribeUserScramCredentialsResponse {
    let results = (x.results.iter())
        .map(|r| {
            let infos = (r.credentials.iter())
                .map(|&(mechanism, iterations)| {
                    dusc::CredentialInfo::default()
                        .with_mechanism(mechanism)
                        .with_iterations(iterations)
                })
                .collect();
            dusc::DescribeUserScramCredentialsResult::default()
                .with_user(sb(&r.user))
                .with_error_code(r.error.0)
                .with_error_message(osb(&r.error_message))
                .with_credential_infos(infos)
        })
        .collect();
    DescribeUserScramCredentialsResponse::default()
        .with_throttle_time_ms(x.throttle_time_ms)
        .with_error_code(x.error.0)
        .with_error_message(osb(&x.error_message))
        .with_results(results)
}

pub(super) fn describe_resp_to_domain(
    k: DescribeUserScramCredentialsResponse,
) -> d::DescribeUserScramCredentialsResponse {
    d::DescribeUserScramCredentialsResponse {
        throttle_time_ms: k.throttle_time_ms,
        error: ErrorCode(k.error_code),
        error_message: ost(&k.error_message),
        results: (k.results.iter())
            .map(|r| d::UserScramCredentialsResult {
                user: st(&r.user),
                error: ErrorCode(r.error_code),
                error_message: ost(&r.error_message),
                credentials: (r.credential_infos.iter())
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn alter_req_to_domain(
    k: AlterUserScramCredentialsRequest,
) -> d::AlterUserScramCredentialsRequest {
    d::AlterUserScramCredentialsRequest {
        deletions: (k.deletions.iter())
            .map(|x| d::ScramCredentialDeletion {
                name: st(&x.name),
                mechanism: x.mechanism,
            })
            .collect(),
        upsertions: (k.upsertions.into_iter())
            .map(|x| d::ScramCredentialUpsertion {
                name: st(&x.name),
                mechanism: x.mechanism,
                iterations: x.iterations,
                salt: x.salt,
                salted_password: x.salted_password,
            })
            .collect(),
    }
}

pub(super) fn alter_req_from_domain(
    x: &d::AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsRequest {
    let deletions = (x.deletions.iter())
        .map(|x| {
            auscr::ScramCredentialDeletion::default()
                .with_name(sb(&x.name))
                .with_mechanism(x.mechanism)
        })
        .collect();
    let upsertions = (x.upsertions.iter())
        .map(|x| {
            auscr::ScramCredentialUpsertion::default()
                .with_name(sb(&x.name))
                .with_mechanism(x.mechanism)
                .with_iterations(x.iterations)
                .with_salt(x.salt.clone())
                .with_salted_password(x.salted_password.clone())
        })
        .collect();
    AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions)
}

pub(super) fn alter_resp_from_domain(
    x: &d::AlterUserScramCredentialsResponse,
) -> AlterUserScramCredentialsResponse {
    let results = (x.results.iter())
        .map(|r| {
            ausc::AlterUserScramCredentialsResult::default()
                .with_user(sb(&r.user))
                .with_error_code(r.error.0)
                .with_error_message(osb(&r.error_message))
        })
        .collect();
    AlterUserScramCredentialsResponse::default()
        .with_throttle_time_ms(x.throttle_time_ms)
        .with_results(results)
}

pub(super) fn alter_resp_to_domain(
    k: AlterUserScramCredentialsResponse,
) -> d::AlterUserScramCredentialsResponse {
    d::AlterUserScramCredentialsResponse {
        throttle_time_ms: k.throttle_time_ms,
        results: (k.results.iter())
            .map(|r| d::AlterUserScramCredentialsResult {
                user: st(&r.user),
                error: ErrorCode(r.error_code),
                error_message: ost(&r.error_message),
            })
            .collect(),
    }
}
