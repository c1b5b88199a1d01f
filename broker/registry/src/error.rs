//! The registry's errors, each one of Confluent's `error_code`s with its HTTP status, so a
//! serializer written against Confluent's registry reads Weir's answers unchanged.

/// An answer the registry refuses with: `status` + `{"error_code": code, "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {version} not found for subject '{subject}'.")]
    VersionNotFound { subject: String, version: String },
    #[error("{0}")]
    SchemaNotFound(String),
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    #[error(
        "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to \
        delete permanently"
    )]
    VersionSoftDeleted { subject: String, version: u32 },
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being \
        permanently deleted"
    )]
    VersionNotSoftDeleted { subject: String, version: u32 },
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    #[error("Subject '{0}' does not have subject-level mode configured")]
    SubjectModeNotFound(String),
    /// 409: the schema breaks the subject's compatibility level; the messages say what broke.
    #[error("Schema being registered is incompatible with an earlier schema for subject \
        \"{subject}\", details: [{}]", messages.join(", "))]
    Incompatible {
        subject: String,
        messages: Vec<String>,
    },
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between \
        [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, \
        backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidCompatibilityLevel,
    #[error("Invalid mode. Valid values are READWRITE, READONLY and IMPORT")]
    InvalidMode,
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("One or more references exist to the schema {{subject={subject}, version={version}}}")]
    ReferenceExists { subject: String, version: u32 },
    /// 400/404/415/422: the request itself (body, route, content type) is wrong.
    #[error("{message}")]
    BadRequest {
        status: u16,
        error_code: u32,
        message: String,
    },
    /// 500: `_schemas` could not be read or written.
    #[error("Error while accessing the schema log: {0}")]
    Store(String),
    #[error("Operation timed out: {0}")]
    Timeout(String),
}

impl RegistryError {
    /// Confluent's `error_code` for this error.
    pub fn error_code(&self) -> u32 {
        match self {
            Self::SubjectNotFound(_) => 40401,
            Self::VersionNotFound { .. } => 40402,
            Self::SchemaNotFound(_) => 40403,
            Self::SubjectSoftDeleted(_) => 40404,
            Self::SubjectNotSoftDeleted(_) => 40405,
            Self::VersionSoftDeleted { .. } => 40406,
            Self::VersionNotSoftDeleted { .. } => 40407,
            Self::SubjectConfigNotFound(_) => 40408,
            Self::SubjectModeNotFound(_) => 40409,
            Self::Incompatible { .. } => 409,
            Self::InvalidSchema(_) => 42201,
            Self::InvalidVersion(_) => 42202,
            Self::InvalidCompatibilityLevel => 42203,
            Self::InvalidMode => 42204,
            Self::OperationNotPermitted(_) => 42205,
            Self::ReferenceExists { .. } => 42206,
            Self::BadRequest { error_code, .. } => *error_code,
            Self::Store(_) => 50001,
            Self::Timeout(_) => 50002,
        }
    }

    /// The HTTP status Confluent answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { status, .. } => *status,
            Self::Store(_) | Self::Timeout(_) => 500,
            Self::Incompatible { .. } => 409,
            error => {
                let code = error.error_code();
                // 404xx -> 404, 422xx -> 422: Confluent's codes start with their status.
                u16::try_from(code / 100).unwrap_or(500)
            }
        }
    }

    pub fn bad_request(status: u16, message: impl Into<String>) -> Self {
        Self::BadRequest {
            status,
            error_code: u32::from(status),
            message: message.into(),
        }
    }
}
