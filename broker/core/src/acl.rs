//! Kafka's authorization model, pure: the ACLs as the metadata image keeps them, Kafka's
//! validation of creations and filters, filter matching (DescribeAcls, DeleteAcls), and
//! the authorizer's decision, with `StandardAuthorizer`'s semantics:
//!
//! - `super.users` are allowed everything;
//! - a binding applies to a request when its principal is the request's or `User:*`, its
//!   host is the client's or `*`, and its resource pattern covers the resource: LITERAL
//!   with the same name, LITERAL `*`, or PREFIXED with a prefix of the name;
//! - a DENY applies to its own operation (or ALL) only; an ALLOW of READ, WRITE, DELETE or
//!   ALTER also allows DESCRIBE, and one of ALTER_CONFIGS also DESCRIBE_CONFIGS;
//! - any applying DENY wins; otherwise any applying ALLOW allows;
//! - when no binding at all covers the resource (for any principal, host or operation),
//!   `allow.everyone.if.no.acl.found` decides (default: denied); when some do but none
//!   applies, denied.
//!
//! Invariants: every ACL in an image passed [`validate_binding`] on the controller that
//! proposed it; [`authorize`] reads only the image's set (no cache to go stale), ranging
//! over the names that can cover the resource, so a check costs O(name length × log n).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use weir_wire::domain::acl::{
    AclBinding, AclFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
};

/// The resource name of the cluster (Kafka's only valid CLUSTER name).
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard resource name, principal name and host.
pub const WILDCARD: &str = "*";
/// The wildcard principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// ACLs the cluster holds: far beyond any real deployment (Kafka sets no limit), and it
/// bounds the metadata image.
pub const ACLS_MAX: usize = 100_000;
/// Creations or filters answered per request; the rest are refused.
pub const ACLS_PER_REQUEST_MAX: usize = 10_000;
/// Longest resource name, principal or host an ACL may carry.
pub const ACL_FIELD_BYTES_MAX: usize = 1024;

/// `authorizer.class.name` values that turn authorization on: Kafka's KRaft and ZooKeeper
/// authorizers (their semantics are the same for ACLs) and Weir's own name.
pub const AUTHORIZER_CLASS_NAMES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "weir",
];

/// One ACL as the metadata log and image store it: the wire binding, serialized as its
/// enum codes (postcard needs no schema change when the wire enum gains a variant).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "AclCodes", into = "AclCodes")]
pub struct Acl(pub AclBinding);

#[derive(Clone, Serialize, Deserialize)]
struct AclCodes {
    resource_type: i8,
    resource_name: String,
    pattern_type: i8,
    principal: String,
    host: String,
    operation: i8,
    permission_type: i8,
}

impl From<AclCodes> for Acl {
    fn from(c: AclCodes) -> Acl {
        Acl(AclBinding {
            resource_type: ResourceType::from_code(c.resource_type),
            resource_name: c.resource_name,
            pattern_type: PatternType::from_code(c.pattern_type),
            principal: c.principal,
            host: c.host,
            operation: AclOperation::from_code(c.operation),
            permission_type: AclPermissionType::from_code(c.permission_type),
        })
    }
}

impl From<Acl> for AclCodes {
    fn from(Acl(b): Acl) -> AclCodes {
        AclCodes {
            resource_type: b.resource_type.code(),
            resource_name: b.resource_name,
            pattern_type: b.pattern_type.code(),
            principal: b.principal,
            host: b.host,
            operation: b.operation.code(),
            permission_type: b.permission_type.code(),
        }
    }
}

/// What `audit` logs (`weir.authorizer.audit.log`): Kafka logs denials at INFO and
/// allows at DEBUG on `kafka.authorizer.logger`; Weir's target is [`AUDIT_TARGET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditLog {
    /// Nothing.
    None,
    /// Denials, at INFO (Kafka's default).
    #[default]
    Denied,
    /// Denials at INFO and allows at INFO too.
    All,
}

/// The `tracing` target of the audit log.
pub const AUDIT_TARGET: &str = "weir::audit";

/// The authorizer's configuration (`authorizer.class.name`, `super.users`,
/// `allow.everyone.if.no.acl.found`, `weir.authorizer.audit.log`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizerConfig {
    /// Authorization is on (`authorizer.class.name` is one of
    /// [`AUTHORIZER_CLASS_NAMES`]); off, everything is allowed.
    pub enabled: bool,
    /// Principals (`User:name`) allowed everything.
    pub super_users: BTreeSet<String>,
    /// What a resource no ACL covers gives.
    pub allow_everyone_if_no_acl_found: bool,
    /// What the audit log records.
    pub audit: AuditLog,
}

/// Why a request was allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Authorization is off.
    Disabled,
    /// A super user.
    SuperUser,
    /// An applying ALLOW and no applying DENY.
    AllowedByAcl,
    /// An applying DENY.
    DeniedByAcl,
    /// No ACL covers the resource, and `allow.everyone.if.no.acl.found` is true.
    AllowedNoAcl,
    /// No ACL covers the resource, and `allow.everyone.if.no.acl.found` is false.
    DeniedNoAcl,
    /// ACLs cover the resource but none applies to this principal, host and operation.
    DeniedNoMatch,
}

impl Decision {
    /// True when the request may proceed.
    pub fn is_allowed(self) -> bool {
        matches!(
            self,
            Decision::Disabled
                | Decision::SuperUser
                | Decision::AllowedByAcl
                | Decision::AllowedNoAcl
        )
    }
}

/// What a request asks to do: Kafka's `Action` without the request context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action<'a> {
    /// The operation.
    pub operation: AclOperation,
    /// The resource type (never `Any` or `Unknown`).
    pub resource_type: ResourceType,
    /// The resource name.
    pub name: &'a str,
}

/// The decision for `principal` (`User:name`) from `host` doing `action`, given the
/// cluster's ACLs.
pub fn authorize(
    acls: &BTreeSet<Acl>,
    config: &AuthorizerConfig,
    principal: &str,
    host: &str,
    action: Action<'_>,
) -> Decision {
    if !config.enabled {
        return Decision::Disabled;
    }
    if config.super_users.contains(principal) {
        return Decision::SuperUser;
    }
    let mut covered = false;
    let mut allowed = false;
    for acl in covering(acls, action.resource_type, action.name) {
        covered = true;
        match applies(acl, principal, host, action.operation) {
            // The planted bug lets an ALLOW outweigh a DENY (the simulator's `cluster-acl`
            // must catch it).
            Some(AclPermissionType::Deny)
                if crate::planted::on(crate::planted::Bug::AclAllowWins) => {}
            Some(AclPermissionType::Deny) => return Decision::DeniedByAcl,
            Some(AclPermissionType::Allow) => allowed = true,
            _ => {}
        }
    }
    match (allowed, covered) {
        (true, _) => Decision::AllowedByAcl,
        (false, true) => Decision::DeniedNoMatch,
        (false, false) if config.allow_everyone_if_no_acl_found => Decision::AllowedNoAcl,
        (false, false) => Decision::DeniedNoAcl,
    }
}

/// Every ACL whose resource pattern covers `(resource_type, name)`: LITERAL `name`,
/// LITERAL `*`, and PREFIXED on any non-empty prefix of `name` (itself included).
fn covering<'a>(
    acls: &'a BTreeSet<Acl>,
    resource_type: ResourceType,
    name: &'a str,
) -> impl Iterator<Item = &'a AclBinding> + 'a {
    // Candidate names: every non-empty prefix at a char boundary, and `*` (deduplicated:
    // a name starting with `*` has it among its prefixes).
    let mut names: BTreeSet<&str> = (name.char_indices())
        .map(|(i, c)| &name[..i + c.len_utf8()])
        .collect();
    names.insert(WILDCARD);
    names.into_iter().flat_map(move |candidate| {
        let exemplar = Acl(AclBinding {
            resource_type,
            resource_name: candidate.to_owned(),
            pattern_type: PatternType::Unknown,
            principal: String::new(),
            host: String::new(),
            operation: AclOperation::Unknown,
            permission_type: AclPermissionType::Unknown,
        });
        (acls.range(exemplar..))
            .map(|acl| &acl.0)
            .take_while(move |b| b.resource_type == resource_type && b.resource_name == candidate)
            .filter(move |b| match b.pattern_type {
                PatternType::Literal => candidate == name || candidate == WILDCARD,
                // `*` is a candidate as the wildcard even when it is no prefix of the name.
                PatternType::Prefixed => name.starts_with(candidate),
                _ => false,
            })
    })
}

/// Whether `acl` (whose resource covers the action's) applies to this principal, host
/// and operation, and with which permission.
fn applies(
    acl: &AclBinding,
    principal: &str,
    host: &str,
    operation: AclOperation,
) -> Option<AclPermissionType> {
    if acl.principal != principal && acl.principal != WILDCARD_PRINCIPAL {
        return None;
    }
    if acl.host != WILDCARD && acl.host != host {
        return None;
    }
    let operation_matches = acl.operation == AclOperation::All
        || acl.operation == operation
        || (acl.permission_type == AclPermissionType::Allow && implies(acl.operation, operation));
    operation_matches.then_some(acl.permission_type)
}

/// Kafka's implied permissions (ALLOW only): READ, WRITE, DELETE and ALTER imply DESCRIBE;
/// ALTER_CONFIGS implies DESCRIBE_CONFIGS.
fn implies(granted: AclOperation, wanted: AclOperation) -> bool {
    use AclOperation::*;
    match wanted {
        Describe => matches!(granted, Read | Write | Delete | Alter),
        DescribeConfigs => granted == AlterConfigs,
        _ => false,
    }
}

/// Kafka's checks of an ACL to create (CreateAcls): INVALID_REQUEST with this message
/// when one fails.
pub fn validate_binding(b: &AclBinding) -> Result<(), String> {
    match b.pattern_type {
        PatternType::Literal | PatternType::Prefixed => {}
        other => return Err(format!("Invalid patternType {other}")),
    }
    match b.resource_type {
        ResourceType::Unknown | ResourceType::Any => {
            return Err(format!("Invalid resourceType {}", b.resource_type))
        }
        _ => {}
    }
    match b.operation {
        AclOperation::Unknown | AclOperation::Any => {
            return Err(format!("Invalid operation {}", b.operation))
        }
        _ => {}
    }
    match b.permission_type {
        AclPermissionType::Allow | AclPermissionType::Deny => {}
        other => return Err(format!("Invalid permissionType {other}")),
    }
    if b.resource_name.is_empty() {
        return Err("Resource name should not be empty".to_owned());
    }
    if b.resource_type == ResourceType::Cluster && b.resource_name != CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    match b.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => {
            return Err(format!(
                "Could not parse principal from `{}` (no colon is present separating the \
                 principal type from the principal name)",
                b.principal
            ))
        }
    }
    if b.host.is_empty() {
        return Err("Invalid host: the host must not be empty (use * for any)".to_owned());
    }
    let longest = (b.resource_name.len())
        .max(b.principal.len())
        .max(b.host.len());
    if longest > ACL_FIELD_BYTES_MAX {
        return Err(format!(
            "ACL fields are limited to {ACL_FIELD_BYTES_MAX} bytes"
        ));
    }
    Ok(())
}

/// Kafka's checks of a DescribeAcls or DeleteAcls filter: no `Unknown` anywhere.
pub fn validate_filter(f: &AclFilter) -> Result<(), String> {
    if f.resource_type == ResourceType::Unknown || f.pattern_type == PatternType::Unknown {
        return Err("Unknown patternFilter.".to_owned());
    }
    if f.operation == AclOperation::Unknown || f.permission_type == AclPermissionType::Unknown {
        return Err("Unknown entryFilter.".to_owned());
    }
    Ok(())
}

/// Kafka's `AclBindingFilter.matches`: whether `filter` selects `b`. A MATCH filter with a
/// name selects the bindings that would cover a resource of that name.
pub fn filter_matches(f: &AclFilter, b: &AclBinding) -> bool {
    if f.resource_type != ResourceType::Any && f.resource_type != b.resource_type {
        return false;
    }
    let pattern_ok = matches!(f.pattern_type, PatternType::Any | PatternType::Match)
        || f.pattern_type == b.pattern_type;
    if !pattern_ok {
        return false;
    }
    let name_ok = match &f.resource_name {
        None => true,
        Some(name) if f.pattern_type != PatternType::Match => *name == b.resource_name,
        Some(name) => match b.pattern_type {
            PatternType::Literal => *name == b.resource_name || b.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&b.resource_name),
            _ => false,
        },
    };
    name_ok
        && f.principal.as_ref().is_none_or(|p| *p == b.principal)
        && f.host.as_ref().is_none_or(|h| *h == b.host)
        && (f.operation == AclOperation::Any || f.operation == b.operation)
        && (f.permission_type == AclPermissionType::Any || f.permission_type == b.permission_type)
}

/// `super.users` as Kafka writes it: `User:a;User:b` (blanks around entries ignored).
pub fn parse_super_users(value: &str) -> BTreeSet<String> {
    (value.split(';'))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests;
