//! The admin client's SCRAM credential calls (KIP-554, Kafka's
//! `kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[...]' --entity-type users`):
//! AlterUserScramCredentials and DescribeUserScramCredentials, sent to the controller (any
//! broker forwards them).
//!
//! As in Kafka, the salt and the salted password are computed here, client-side: the
//! password itself never leaves the client, and the broker keeps only the keys derived
//! from the salted password.

use bytes::Bytes;
use weir_runtime::Runtime;
use weir_wire::domain::sasl::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, ScramCredentialDeletion,
    ScramCredentialUpsertion,
};
use weir_wire::domain::{ApiRequest, ApiResponse};
use weir_wire::error::ErrorCode;
use weir_wire::sasl::{NonceSource, ScramMechanism};

use crate::admin::Admin;
use crate::driver::cluster::unexpected;
use crate::error::ClientError;

/// Kafka's default iteration count for new SCRAM credentials.
pub const SCRAM_ITERATIONS_DEFAULT: u32 = 4096;

/// One user's SCRAM credentials: `(mechanism, iterations)` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScramCredentials {
    /// User name.
    pub user: String,
    /// Mechanisms and their iteration counts.
    pub credentials: Vec<(ScramMechanism, i32)>,
}

impl<R: Runtime> Admin<R> {
    /// Add or replace `user`'s credential for `mechanism` with a fresh salt.
    pub async fn upsert_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<(), ClientError> {
        let mut salts = NonceSource::new(self.cluster().runtime().secret_seed());
        // The runtime's seed is per process: mix the user and mechanism in so two
        // credentials made by one process never share a salt.
        let mut salt = salts.bytes().to_vec();
        for (index, byte) in user.bytes().chain(mechanism.name().bytes()).enumerate() {
            salt[index % 32] ^= byte;
        }
        let salted = mechanism.salted_password(password, &salt, iterations);
        let upsertion = ScramCredentialUpsertion {
            name: user.to_owned(),
            mechanism: mechanism.code(),
            iterations: i32::try_from(iterations).unwrap_or(i32::MAX),
            salt: Bytes::from(salt),
            salted_password: Bytes::from(salted),
        };
        self.alter_scram(AlterUserScramCredentialsRequest {
            deletions: Vec::new(),
            upsertions: vec![upsertion],
        })
        .await
    }

    /// Remove `user`'s credential for `mechanism`.
    pub async fn delete_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<(), ClientError> {
        self.alter_scram(AlterUserScramCredentialsRequest {
            deletions: vec![ScramCredentialDeletion {
                name: user.to_owned(),
                mechanism: mechanism.code(),
            }],
            upsertions: Vec::new(),
        })
        .await
    }

    /// Every user with SCRAM credentials (or only `users`).
    pub async fn describe_scram_credentials(
        &self,
        users: Option<Vec<String>>,
    ) -> Result<Vec<UserScramCredentials>, ClientError> {
        let request =
            ApiRequest::DescribeUserScramCredentials(DescribeUserScramCredentialsRequest { users });
        let response = match self.cluster().request_controller(&request).await? {
            ApiResponse::DescribeUserScramCredentials(response) => response,
            other => return Err(unexpected("DescribeUserScramCredentials", &other)),
        };
        if !response.error.is_ok() {
            return Err(ClientError::Kafka {
                code: response.error,
                context: "DescribeUserScramCredentials".into(),
                message: response.error_message,
            });
        }
        let mut out = Vec::new();
        for result in response.results {
            if result.error != ErrorCode::NONE {
                return Err(ClientError::Kafka {
                    code: result.error,
                    context: format!("user {}", result.user),
                    message: result.error_message,
                });
            }
            let credentials = (result.credentials.iter())
                .filter_map(|&(code, iterations)| {
                    Some((ScramMechanism::from_code(code)?, iterations))
                })
                .collect();
            out.push(UserScramCredentials {
                user: result.user,
                credentials,
            });
        }
        Ok(out)
    }

    async fn alter_scram(
        &self,
        request: AlterUserScramCredentialsRequest,
    ) -> Result<(), ClientError> {
        let request = ApiRequest::AlterUserScramCredentials(request);
        let response = match self.cluster().request_controller(&request).await? {
            ApiResponse::AlterUserScramCredentials(response) => response,
            other => return Err(unexpected("AlterUserScramCredentials", &other)),
        };
        match response.results.into_iter().find(|r| !r.error.is_ok()) {
            None => Ok(()),
            Some(failed) => Err(ClientError::Kafka {
                code: failed.error,
                context: format!("user {}", failed.user),
                message: failed.error_message,
            }),
        }
    }
}
