//! KIP-554's SCRAM credential administration on the active controller (other brokers
//! forward both APIs, like the other admin APIs), and the per-broker lookup the
//! connections' SCRAM authentication reads.
//!
//! Credentials are records of the metadata log (`MetaRecord::ScramCredentialUpserted` /
//! `ScramCredentialDeleted`), so every node applies them and every broker can verify every
//! user; they survive controller failover and restarts like topics do.
//!
//! Kafka's validation, per user (one result per user name; a user's alterations apply all
//! or none):
//! - an empty user name: UNACCEPTABLE_CREDENTIAL;
//! - a mechanism other than SCRAM-SHA-256 / SCRAM-SHA-512: UNSUPPORTED_SASL_MECHANISM;
//! - iterations outside 4096..=16384: UNACCEPTABLE_CREDENTIAL;
//! - a user and mechanism named twice in one request: DUPLICATE_RESOURCE;
//! - deleting a credential that does not exist: RESOURCE_NOT_FOUND.
//!
//! The salted password a client sends is turned into the stored and server keys here,
//! before the record is proposed: the log and the image never hold it.

use std::collections::{BTreeMap, BTreeSet};

use weir_wire::domain::sasl::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    AlterUserScramCredentialsResult, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, ScramCredentialUpsertion, UserScramCredentialsResult,
};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;
use weir_wire::sasl::{
    ScramCredential, ScramMechanism, SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN,
};

use super::Node;
use crate::cluster::image::{MetaRecord, ScramEntry};
use crate::event::RequestId;

/// Users per request an answer is built for: far beyond any admin tool's batch, and it
/// bounds the work of one request on the controller.
pub const SCRAM_USERS_PER_REQUEST_MAX: usize = 1000;

impl Node {
    /// The SCRAM credential of `user` for `mechanism`, from this node's applied image: what
    /// a connection authenticating a client checks its proof against.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<ScramCredential> {
        let entry = self
            .cluster
            .meta
            .image
            .scram
            .get(user)?
            .get(&mechanism.code())?;
        Some(ScramCredential {
            salt: entry.salt.clone(),
            iterations: entry.iterations,
            stored_key: entry.stored_key.clone(),
            server_key: entry.server_key.clone(),
        })
    }

    /// DescribeUserScramCredentials, on the active controller.
    pub(super) fn describe_user_scram_credentials(
        &mut self,
        id: RequestId,
        request: DescribeUserScramCredentialsRequest,
    ) {
        if self.not_controller(
            id,
            &ApiRequest::DescribeUserScramCredentials(request.clone()),
        ) {
            return;
        }
        // The committed image: an answer never shows a credential that may not commit.
        let image = &self.cluster.meta.image;
        let describe =
            |user: &String, credentials: &BTreeMap<i8, ScramEntry>| UserScramCredentialsResult {
                user: user.clone(),
                error: ErrorCode::NONE,
                error_message: None,
                credentials: (credentials.iter())
                    .map(|(mechanism, entry)| (*mechanism, entry.iterations as i32))
                    .collect(),
            };
        let results = match request.users.filter(|users| !users.is_empty()) {
            None => (image.scram.iter())
                .take(SCRAM_USERS_PER_REQUEST_MAX)
                .map(|(user, credentials)| describe(user, credentials))
                .collect(),
            Some(users) => {
                let mut results = Vec::new();
                let mut seen = BTreeSet::new();
                let twice: BTreeSet<&String> =
                    (users.iter()).filter(|user| !seen.insert(*user)).collect();
                let mut answered = BTreeSet::new();
                for user in users.iter().take(SCRAM_USERS_PER_REQUEST_MAX) {
                    if !answered.insert(user) {
                        continue;
                    }
                    let result = match image.scram.get(user) {
                        _ if twice.contains(user) => failed_user(
                            user,
                            ErrorCode::DUPLICATE_RESOURCE,
                            "Cannot describe SCRAM credentials for the same user twice in a \
                             single request",
                        ),
                        Some(credentials) => describe(user, credentials),
                        None => failed_user(
                            user,
                            ErrorCode::RESOURCE_NOT_FOUND,
                            "Attempt to describe a user credential that does not exist",
                        ),
                    };
                    results.push(result);
                }
                results
            }
        };
        let response = DescribeUserScramCredentialsResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            error_message: None,
            results,
        };
        self.respond(id, ApiResponse::DescribeUserScramCredentials(response));
    }

    /// AlterUserScramCredentials, on the active controller: validated per user, then one
    /// proposal for every valid user's records; answered once they are committed.
    pub(super) fn alter_user_scram_credentials(
        &mut self,
        id: RequestId,
        request: AlterUserScramCredentialsRequest,
    ) {
        if self.not_controller(id, &ApiRequest::AlterUserScramCredentials(request.clone())) {
            return;
        }
        let planned = plan_alterations(&request, &self.cluster.meta.decision_image().scram);
        let mut records = Vec::new();
        let mut results = Vec::new();
        let mut proposed_users = Vec::new();
        for (user, outcome) in planned {
            match outcome {
                Ok(user_records) => {
                    records.extend(user_records);
                    proposed_users.push(results.len());
                    results.push(AlterUserScramCredentialsResult {
                        user,
                        error: ErrorCode::NONE,
                        error_message: None,
                    });
                }
                Err((error, message)) => results.push(AlterUserScramCredentialsResult {
                    user,
                    error,
                    error_message: Some(message.to_owned()),
                }),
            }
        }
        let last = if records.is_empty() {
            None
        } else {
            let last = self.propose(records);
            if last.is_none() {
                // Not proposed (leadership lost, or the log throttled): never a success.
                for index in proposed_users {
                    results[index].error = ErrorCode::NOT_CONTROLLER;
                    results[index].error_message =
                        Some("the controller could not propose the change; retry".to_owned());
                }
            }
            last
        };
        let response = ApiResponse::AlterUserScramCredentials(AlterUserScramCredentialsResponse {
            throttle_time_ms: 0,
            results,
        });
        self.respond_after_index(id, last, response);
    }
}

fn failed_user(user: &str, error: ErrorCode, message: &str) -> UserScramCredentialsResult {
    UserScramCredentialsResult {
        user: user.to_owned(),
        error,
        error_message: Some(message.to_owned()),
        credentials: Vec::new(),
    }
}

type Planned = Result<Vec<MetaRecord>, (ErrorCode, &'static str)>;

/// Every user of `request` in first-appearance order, with its records or why it is
/// refused, checked against `scram` (the controller's decision image).
fn plan_alterations(
    request: &AlterUserScramCredentialsRequest,
    scram: &BTreeMap<String, BTreeMap<i8, ScramEntry>>,
) -> Vec<(String, Planned)> {
    let mut order: Vec<String> = Vec::new();
    let named = (request.deletions.iter().map(|d| (&d.name, d.mechanism)))
        .chain(request.upsertions.iter().map(|u| (&u.name, u.mechanism)));
    let mut counts: BTreeMap<(&String, i8), usize> = BTreeMap::new();
    for (name, mechanism) in named {
        if !order.contains(name) {
            order.push(name.clone());
        }
        *counts.entry((name, mechanism)).or_default() += 1;
    }
    order.truncate(SCRAM_USERS_PER_REQUEST_MAX);
    let mut out = Vec::with_capacity(order.len());
    for user in order {
        let deletions = request.deletions.iter().filter(|d| d.name == user);
        let upsertions = request.upsertions.iter().filter(|u| u.name == user);
        let duplicate = (counts.iter()).any(|((name, _), count)| **name == user && *count > 1);
        let planned = (|| {
            if user.is_empty() {
                return Err((
                    ErrorCode::UNACCEPTABLE_CREDENTIAL,
                    "Username must not be empty",
                ));
            }
            let mut records = Vec::new();
            for deletion in deletions {
                let mechanism = known_mechanism(deletion.mechanism)?;
                let held = scram
                    .get(&user)
                    .is_some_and(|c| c.contains_key(&mechanism.code()));
                if !held && !duplicate {
                    return Err((
                        ErrorCode::RESOURCE_NOT_FOUND,
                        "Attempt to delete a user credential that does not exist",
                    ));
                }
                records.push(MetaRecord::ScramCredentialDeleted {
                    user: user.clone(),
                    mechanism: mechanism.code(),
                });
            }
            for upsertion in upsertions {
                records.push(upsert_record(&user, upsertion)?);
            }
            if duplicate {
                return Err((
                    ErrorCode::DUPLICATE_RESOURCE,
                    "A user credential cannot be altered twice in the same request",
                ));
            }
            Ok(records)
        })();
        out.push((user, planned));
    }
    out
}

fn known_mechanism(code: i8) -> Result<ScramMechanism, (ErrorCode, &'static str)> {
    ScramMechanism::from_code(code).ok_or((
        ErrorCode::UNSUPPORTED_SASL_MECHANISM,
        "Unknown SCRAM mechanism",
    ))
}

fn upsert_record(
    user: &str,
    upsertion: &ScramCredentialUpsertion,
) -> Result<MetaRecord, (ErrorCode, &'static str)> {
    let mechanism = known_mechanism(upsertion.mechanism)?;
    let iterations = u32::try_from(upsertion.iterations).unwrap_or(0);
    if iterations < SCRAM_ITERATIONS_MIN {
        return Err((ErrorCode::UNACCEPTABLE_CREDENTIAL, "Too few iterations"));
    }
    if iterations > SCRAM_ITERATIONS_MAX {
        return Err((ErrorCode::UNACCEPTABLE_CREDENTIAL, "Too many iterations"));
    }
    if upsertion.salt.is_empty() {
        return Err((ErrorCode::UNACCEPTABLE_CREDENTIAL, "Salt must not be empty"));
    }
    if upsertion.salted_password.len() != mechanism.hash_bytes() {
        return Err((
            ErrorCode::UNACCEPTABLE_CREDENTIAL,
            "The salted password has the wrong length for the mechanism",
        ));
    }
    let credential = ScramCredential::from_salted_password(
        mechanism,
        &upsertion.salt,
        iterations,
        &upsertion.salted_password,
    );
    Ok(MetaRecord::ScramCredentialUpserted {
        user: user.to_owned(),
        mechanism: mechanism.code(),
        credential: ScramEntry {
            salt: credential.salt,
            iterations,
            stored_key: credential.stored_key,
            server_key: credential.server_key,
        },
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use weir_wire::domain::sasl::{scram_mechanism, ScramCredentialDeletion};

    use super::*;

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion {
            name: name.into(),
            mechanism,
            iterations,
            salt: Bytes::from_static(b"salt"),
            salted_password: Bytes::from(vec![1; 32]),
        }
    }

    fn errors(planned: &[(String, Planned)]) -> Vec<(&str, ErrorCode)> {
        (planned.iter())
            .map(|(user, p)| {
                (
                    user.as_str(),
                    p.as_ref().map_or_else(|e| e.0, |_| ErrorCode::NONE),
                )
            })
            .collect()
    }

    // Goal: Kafka's validation rules, one result per user, in first-appearance order.
    // Method: one request breaking each rule once beside a valid user.
    #[test]
    fn validation_follows_kafka() {
        let request = AlterUserScramCredentialsRequest {
            deletions: vec![
                ScramCredentialDeletion {
                    name: "ghost".into(),
                    mechanism: scram_mechanism::SCRAM_SHA_256,
                },
                ScramCredentialDeletion {
                    name: "twice".into(),
                    mechanism: scram_mechanism::SCRAM_SHA_256,
                },
            ],
            upsertions: vec![
                upsert("alice", scram_mechanism::SCRAM_SHA_256, 4096),
                upsert("", scram_mechanism::SCRAM_SHA_256, 4096),
                upsert("weird", scram_mechanism::UNKNOWN, 4096),
                upsert("few", scram_mechanism::SCRAM_SHA_256, 4095),
                upsert("many", scram_mechanism::SCRAM_SHA_256, 16385),
                upsert("twice", scram_mechanism::SCRAM_SHA_256, 4096),
            ],
        };
        let planned = plan_alterations(&request, &BTreeMap::new());
        assert_eq!(
            errors(&planned),
            [
                ("ghost", ErrorCode::RESOURCE_NOT_FOUND),
                ("twice", ErrorCode::DUPLICATE_RESOURCE),
                ("alice", ErrorCode::NONE),
                ("", ErrorCode::UNACCEPTABLE_CREDENTIAL),
                ("weird", ErrorCode::UNSUPPORTED_SASL_MECHANISM),
                ("few", ErrorCode::UNACCEPTABLE_CREDENTIAL),
                ("many", ErrorCode::UNACCEPTABLE_CREDENTIAL),
            ]
        );
        // The record keeps keys, never the salted password.
        let Ok(records) = &planned[2].1 else {
            panic!("alice is valid");
        };
        let [MetaRecord::ScramCredentialUpserted { credential, .. }] = records.as_slice() else {
            panic!("one upsert: {records:?}");
        };
        assert_eq!(credential.iterations, 4096);
        assert_ne!(credential.stored_key, vec![1; 32]);
        assert_eq!(credential.stored_key.len(), 32);
    }
}
