//! The authorizer keys, with Kafka's names: `authorizer.class.name` (Kafka's
//! `StandardAuthorizer` or `AclAuthorizer`, or `weir`, turn ACL checks on; empty leaves
//! them off), `super.users` (`User:a;User:b`), `allow.everyone.if.no.acl.found` and Weir's
//! `weir.authorizer.audit.log` (`none`, `denied`, `all`).
//!
//! Invariant: an `authorizer.class.name` Weir cannot honour (a custom Java class) is
//! refused, never silently treated as "no authorizer": that would open every resource.

use weir_core::acl::{AuditLog, AuthorizerConfig, AUTHORIZER_CLASS_NAMES};

use super::{ConfigError, Input};

/// Apply `input` when it is an authorizer key; `None` when it is not one.
pub(super) fn apply(
    config: &mut AuthorizerConfig,
    input: &Input<'_>,
) -> Option<Result<(), ConfigError>> {
    let result = match input.key {
        "authorizer.class.name" => input.string().and_then(|name| {
            let name = name.trim();
            if name.is_empty() {
                config.enabled = false;
                Ok(())
            } else if AUTHORIZER_CLASS_NAMES.contains(&name) {
                config.enabled = true;
                Ok(())
            } else {
                Err(input.invalid(format!(
                    "unsupported authorizer (Weir implements Kafka's ACL semantics for: {})",
                    AUTHORIZER_CLASS_NAMES.join(", ")
                )))
            }
        }),
        "super.users" => input.string().and_then(|value| {
            let users = weir_core::acl::parse_super_users(value);
            match users.iter().find(|u| !u.contains(':')) {
                Some(bad) => {
                    Err(input.invalid(format!("`{bad}` is not a principal; write `User:{bad}`")))
                }
                None => {
                    config.super_users = users;
                    Ok(())
                }
            }
        }),
        "allow.everyone.if.no.acl.found" => input.boolean().map(|allow| {
            config.allow_everyone_if_no_acl_found = allow;
        }),
        "weir.authorizer.audit.log" => input.string().and_then(|value| {
            config.audit = match value.trim().to_ascii_lowercase().as_str() {
                "none" => AuditLog::None,
                "denied" => AuditLog::Denied,
                "all" => AuditLog::All,
                _ => return Err(input.invalid("expected none, denied or all")),
            };
            Ok(())
        }),
        _ => return None,
    };
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, refusal};
    use super::*;

    // Goal: Kafka's keys reach the node's authorizer config; a custom class and a bare
    // user name are refused naming their key. Method: parse small TOML texts.
    #[test]
    fn authorizer_keys() {
        assert_eq!(parse("").node.authorizer, AuthorizerConfig::default());
        let config = parse(&format!(
            "\"authorizer.class.name\" = \"{}\"\n\
             \"super.users\" = \"User:admin;User:ops\"\n\
             \"allow.everyone.if.no.acl.found\" = true\n\
             \"weir.authorizer.audit.log\" = \"all\"\n",
            AUTHORIZER_CLASS_NAMES[0]
        ));
        let authorizer = config.node.authorizer;
        assert!(authorizer.enabled);
        assert!(authorizer.allow_everyone_if_no_acl_found);
        assert_eq!(authorizer.audit, AuditLog::All);
        let users: Vec<&str> = authorizer.super_users.iter().map(String::as_str).collect();
        assert_eq!(users, ["User:admin", "User:ops"]);
        assert!(
            parse("\"authorizer.class.name\" = \"weir\"")
                .node
                .authorizer
                .enabled
        );
        let error = refusal("\"authorizer.class.name\" = \"com.example.MyAuthorizer\"");
        assert!(error.contains("authorizer.class.name"), "{error}");
        let error = refusal("\"super.users\" = \"admin\"");
        assert!(error.contains("super.users"), "{error}");
        let error = refusal("\"weir.authorizer.audit.log\" = \"loud\"");
        assert!(error.contains("weir.authorizer.audit.log"), "{error}");
    }
}
