//! Domain types of the SASL APIs and KIP-554's SCRAM credential administration:
//! SaslHandshake (key 17, v0-1), SaslAuthenticate (key 36, v0-2),
//! DescribeUserScramCredentials (key 50, v0) and AlterUserScramCredentials (key 51, v0).
//!
//! SaslHandshake and SaslAuthenticate are answered by the broker's connection (its
//! authentication state machine), never by the node; the credential APIs are served by
//! the active controller from the metadata image.
//!
//! Same invariant as the parent module: each type round-trips through the codec at every
//! version that carries all of its fields.

use bytes::Bytes;

use crate::error::ErrorCode;

/// SaslHandshake request: the mechanism the client wants to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslHandshakeRequest {
    /// Mechanism name as sent (`PLAIN`, `SCRAM-SHA-256`, ...).
    pub mechanism: String,
    /// The request version: v0 carries the SASL tokens as raw frames afterwards, v1 wraps
    /// them in SaslAuthenticate requests. Weir serves v1's form only (every maintained
    /// client uses it); v0 is answered with the enabled mechanisms so the client can tell.
    pub version: i16,
}

/// SaslHandshake response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeResponse {
    /// NONE, UNSUPPORTED_SASL_MECHANISM or ILLEGAL_SASL_STATE.
    pub error: ErrorCode,
    /// The mechanisms enabled on the listener.
    pub mechanisms: Vec<String>,
}

/// SaslAuthenticate request: one token of the SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslAuthenticateRequest {
    /// The mechanism's token (never logged: it may hold a password or a proof).
    pub auth_bytes: Bytes,
}

/// SaslAuthenticate response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateResponse {
    /// NONE, SASL_AUTHENTICATION_FAILED or ILLEGAL_SASL_STATE.
    pub error: ErrorCode,
    /// Why it failed (v0+; a message the user can act on, never a secret).
    pub error_message: Option<String>,
    /// The server's token (SCRAM's server-first and server-final messages).
    pub auth_bytes: Bytes,
    /// v1+ (KIP-368): how long the session lasts before the client must re-authenticate;
    /// 0 = no limit.
    pub session_lifetime_ms: i64,
}

/// KIP-554's mechanism codes (`ScramMechanism` in Kafka's admin API).
pub mod scram_mechanism {
    /// An unknown mechanism.
    pub const UNKNOWN: i8 = 0;
    /// SCRAM-SHA-256.
    pub const SCRAM_SHA_256: i8 = 1;
    /// SCRAM-SHA-512.
    pub const SCRAM_SHA_512: i8 = 2;
}

/// DescribeUserScramCredentials request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeUserScramCredentialsRequest {
    /// Users to describe; `None` or empty = every user with a credential.
    pub users: Option<Vec<String>>,
}

/// DescribeUserScramCredentials response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeUserScramCredentialsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Top-level error.
    pub error: ErrorCode,
    /// Top-level error message.
    pub error_message: Option<String>,
    /// One result per user.
    pub results: Vec<UserScramCredentialsResult>,
}

/// One user's credentials (mechanism and iterations only: never salts or keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScramCredentialsResult {
    /// User name.
    pub user: String,
    /// RESOURCE_NOT_FOUND for a user without credentials, DUPLICATE_RESOURCE for a user
    /// asked twice.
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// `(mechanism, iterations)` per credential.
    pub credentials: Vec<(i8, i32)>,
}

/// AlterUserScramCredentials request: deletions and upsertions, computed client-side
/// (the password never leaves the client; the salted password does, as in Kafka).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterUserScramCredentialsRequest {
    /// Credentials to delete.
    pub deletions: Vec<ScramCredentialDeletion>,
    /// Credentials to add or replace.
    pub upsertions: Vec<ScramCredentialUpsertion>,
}

/// One credential to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialDeletion {
    /// User name.
    pub name: String,
    /// Mechanism code ([`scram_mechanism`]).
    pub mechanism: i8,
}

/// One credential to add or replace.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentialUpsertion {
    /// User name.
    pub name: String,
    /// Mechanism code ([`scram_mechanism`]).
    pub mechanism: i8,
    /// PBKDF2 iterations.
    pub iterations: i32,
    /// The salt.
    pub salt: Bytes,
    /// `Hi(password, salt, iterations)`: the broker derives the stored and server keys from
    /// it and keeps only those.
    pub salted_password: Bytes,
}

impl std::fmt::Debug for ScramCredentialUpsertion {
    // The salted password is a password equivalent for SCRAM: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentialUpsertion")
            .field("name", &self.name)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// AlterUserScramCredentials response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterUserScramCredentialsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// One result per user named in the request.
    pub results: Vec<AlterUserScramCredentialsResult>,
}

/// One user's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterUserScramCredentialsResult {
    /// User name.
    pub user: String,
    /// NONE or why the user's alterations were refused (none of them applied).
    pub error: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
}
