//! Domain types of Kafka's ACL administration: DescribeAcls (key 29), CreateAcls (key 30)
//! and DeleteAcls (key 31), v1-3 each (v0 has no pattern type; no maintained client sends
//! it, and Kafka 4.0 dropped it).
//!
//! The four ACL enums are parsed here once, at decode: a code Kafka does not define becomes
//! the enum's `Unknown` variant (code 0, as Kafka's own `fromCode` does), which the broker
//! refuses per creation or filter with INVALID_REQUEST. Names (`name`, `parse`) are Kafka's
//! upper-case ones (`TRANSACTIONAL_ID`, `IDEMPOTENT_WRITE`), so CLIs and logs read as
//! `kafka-acls.sh` does.
//!
//! Same invariant as the parent module: each type round-trips through the codec at every
//! served version (an `Unknown` becomes code 0 and comes back `Unknown`).

use crate::error::ErrorCode;

macro_rules! acl_enum {
    (
        $(#[$doc:meta])* $name:ident {
            $($(#[$vdoc:meta])* $variant:ident = $code:literal, $kafka:literal;)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            /// A code Kafka does not define (or 0): refused wherever it matters.
            Unknown,
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every defined value (not `Unknown`), in code order.
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant,)*];

            /// The value of a wire code; an undefined code is `Unknown`.
            pub fn from_code(code: i8) -> Self {
                match code {
                    $($code => $name::$variant,)*
                    _ => $name::Unknown,
                }
            }

            /// The wire code (`Unknown` is 0).
            pub fn code(self) -> i8 {
                match self {
                    $name::Unknown => 0,
                    $($name::$variant => $code,)*
                }
            }

            /// Kafka's upper-case name, e.g. `TRANSACTIONAL_ID`.
            pub fn name(self) -> &'static str {
                match self {
                    $name::Unknown => "UNKNOWN",
                    $($name::$variant => $kafka,)*
                }
            }

            /// The value named `name` (Kafka's upper-case name, case-insensitive, `-` or `_`
            /// between words, or the CamelCase one), if it is a defined value.
            pub fn parse(name: &str) -> Option<Self> {
                let wanted: String = (name.chars())
                    .filter(|c| *c != '_' && *c != '-')
                    .map(|c| c.to_ascii_uppercase())
                    .collect();
                Self::ALL_VALUES.iter().copied().find(|v| v.name().replace('_', "") == wanted)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

acl_enum! {
    /// The kind of resource an ACL protects (Kafka's `ResourceType`).
    ResourceType {
        /// Filters only: any resource type.
        Any = 1, "ANY";
        /// A topic.
        Topic = 2, "TOPIC";
        /// A consumer group.
        Group = 3, "GROUP";
        /// The cluster (name `kafka-cluster`).
        Cluster = 4, "CLUSTER";
        /// A transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user (KIP-373).
        User = 7, "USER";
    }
}

acl_enum! {
    /// How an ACL's resource name matches (Kafka's `PatternType`).
    PatternType {
        /// Filters only: any pattern type.
        Any = 1, "ANY";
        /// Filters only: every binding that would match the filter's name as a resource.
        Match = 2, "MATCH";
        /// The name exactly, or every name for `*`.
        Literal = 3, "LITERAL";
        /// Every name starting with the binding's name.
        Prefixed = 4, "PREFIXED";
    }
}

acl_enum! {
    /// What an ACL allows or denies (Kafka's `AclOperation`).
    AclOperation {
        /// Filters only: any operation.
        Any = 1, "ANY";
        /// Every operation.
        All = 2, "ALL";
        /// Read.
        Read = 3, "READ";
        /// Write.
        Write = 4, "WRITE";
        /// Create.
        Create = 5, "CREATE";
        /// Delete.
        Delete = 6, "DELETE";
        /// Alter.
        Alter = 7, "ALTER";
        /// Describe.
        Describe = 8, "DESCRIBE";
        /// Inter-broker actions.
        ClusterAction = 9, "CLUSTER_ACTION";
        /// DescribeConfigs.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// AlterConfigs.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Idempotent produce.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
}

acl_enum! {
    /// Whether an ACL allows or denies (Kafka's `AclPermissionType`).
    AclPermissionType {
        /// Filters only: either.
        Any = 1, "ANY";
        /// Deny (wins over any allow).
        Deny = 2, "DENY";
        /// Allow.
        Allow = 3, "ALLOW";
    }
}

/// One ACL: who (`principal` from `host`) may or may not do `operation` on the resources
/// `(resource_type, resource_name, pattern_type)` names. As sent in CreateAcls, answered in
/// DeleteAcls' matching ACLs; DescribeAcls groups them by resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name (`*` = every resource of the type, when literal).
    pub resource_name: String,
    /// LITERAL or PREFIXED (in a valid binding).
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice`; `User:*` = every user.
    pub principal: String,
    /// The client host, or `*` for every host.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission_type: AclPermissionType,
}

/// A filter over ACLs (DescribeAcls, DeleteAcls): `None` and the `Any` values match all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// The resource type, or `Any`.
    pub resource_type: ResourceType,
    /// The resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// The pattern type: `Any`, `Match`, `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// The principal, or `None` for any.
    pub principal: Option<String>,
    /// The host, or `None` for any.
    pub host: Option<String>,
    /// The operation, or `Any`.
    pub operation: AclOperation,
    /// The permission type, or `Any`.
    pub permission_type: AclPermissionType,
}

impl AclFilter {
    /// The filter that matches every ACL.
    pub fn any() -> Self {
        AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission_type: AclPermissionType::Any,
        }
    }
}

/// DescribeAcls request: one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeAclsRequest {
    /// The filter.
    pub filter: AclFilter,
}

/// DescribeAcls response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeAclsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// NONE, INVALID_REQUEST, SECURITY_DISABLED or CLUSTER_AUTHORIZATION_FAILED.
    pub error: ErrorCode,
    /// Why.
    pub error_message: Option<String>,
    /// The matching ACLs, grouped by resource pattern.
    pub resources: Vec<AclResource>,
}

/// One resource pattern and its ACLs (DescribeAcls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclResource {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name.
    pub resource_name: String,
    /// The pattern type.
    pub pattern_type: PatternType,
    /// The ACLs on this pattern.
    pub acls: Vec<AclDescription>,
}

/// One ACL of a resource pattern (DescribeAcls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclDescription {
    /// The principal.
    pub principal: String,
    /// The host.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission_type: AclPermissionType,
}

/// CreateAcls request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateAclsRequest {
    /// The ACLs to create, each answered in order.
    pub creations: Vec<AclBinding>,
}

/// CreateAcls response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateAclsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// One result per creation, in request order.
    pub results: Vec<AclResult>,
}

/// The outcome of one creation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclResult {
    /// NONE, INVALID_REQUEST, CLUSTER_AUTHORIZATION_FAILED, ...
    pub error: ErrorCode,
    /// Why.
    pub error_message: Option<String>,
}

/// DeleteAcls request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteAclsRequest {
    /// Filters; every ACL matching one is deleted.
    pub filters: Vec<AclFilter>,
}

/// DeleteAcls response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteAclsResponse {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// One result per filter, in request order.
    pub filter_results: Vec<DeleteAclsFilterResult>,
}

/// The outcome of one DeleteAcls filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteAclsFilterResult {
    /// NONE or why the filter was refused (nothing deleted for it).
    pub error: ErrorCode,
    /// Why.
    pub error_message: Option<String>,
    /// The ACLs the filter matched (and deleted).
    pub matching_acls: Vec<DeleteAclsMatchingAcl>,
}

/// One ACL a DeleteAcls filter matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteAclsMatchingAcl {
    /// NONE when deleted.
    pub error: ErrorCode,
    /// Why not.
    pub error_message: Option<String>,
    /// The ACL.
    pub acl: AclBinding,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: codes and names are Kafka's and invert each other. Method: every value through
    // from_code(code()) and parse(name()); undefined codes are Unknown with code 0.
    #[test]
    fn codes_and_names_round_trip() {
        for &op in AclOperation::ALL_VALUES {
            assert_eq!(AclOperation::from_code(op.code()), op);
            assert_eq!(AclOperation::parse(op.name()), Some(op));
        }
        for &t in ResourceType::ALL_VALUES {
            assert_eq!(ResourceType::from_code(t.code()), t);
            assert_eq!(ResourceType::parse(t.name()), Some(t));
        }
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclPermissionType::Allow.code(), 3);
        assert_eq!(AclOperation::from_code(99), AclOperation::Unknown);
        assert_eq!(AclOperation::Unknown.code(), 0);
        assert_eq!(
            AclOperation::parse("IdempotentWrite"),
            Some(AclOperation::IdempotentWrite)
        );
        assert_eq!(
            ResourceType::parse("transactional-id"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(AclPermissionType::parse("maybe"), None);
    }
}
