//! The authorizer's table (Kafka's StandardAuthorizer semantics, one row per rule) and a
//! proptest against a naive reference that scans every ACL.

use proptest::prelude::*;

use super::*;

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    host: &str,
    operation: AclOperation,
    permission_type: AclPermissionType,
) -> Acl {
    Acl(AclBinding {
        resource_type,
        resource_name: name.into(),
        pattern_type,
        principal: principal.into(),
        host: host.into(),
        operation,
        permission_type,
    })
}

fn topic_acl(
    name: &str,
    pattern: PatternType,
    principal: &str,
    op: AclOperation,
    allow: bool,
) -> Acl {
    let permission = if allow {
        AclPermissionType::Allow
    } else {
        AclPermissionType::Deny
    };
    acl(
        ResourceType::Topic,
        name,
        pattern,
        principal,
        "*",
        op,
        permission,
    )
}

fn on() -> AuthorizerConfig {
    AuthorizerConfig {
        enabled: true,
        super_users: parse_super_users("User:admin; User:root"),
        allow_everyone_if_no_acl_found: false,
        audit: AuditLog::Denied,
    }
}

fn topic(op: AclOperation, name: &str) -> Action<'_> {
    Action {
        operation: op,
        resource_type: ResourceType::Topic,
        name,
    }
}

fn decide(acls: &[Acl], principal: &str, action: Action<'_>) -> Decision {
    let set: BTreeSet<Acl> = acls.iter().cloned().collect();
    authorize(&set, &on(), principal, "10.0.0.1", action)
}

use AclOperation::*;
use PatternType::{Literal, Prefixed};

// Goal: each of StandardAuthorizer's rules, alone. Method: one small ACL set per rule and
// the decision for a request it should (or should not) cover.
#[test]
fn the_rules_one_by_one() {
    let alice = "User:alice";
    // Off: everything allowed, whatever the ACLs.
    let deny_all = [topic_acl("t", Literal, "User:*", All, false)];
    let set: BTreeSet<Acl> = deny_all.iter().cloned().collect();
    let off = AuthorizerConfig::default();
    assert_eq!(
        authorize(&set, &off, alice, "h", topic(Write, "t")),
        Decision::Disabled
    );
    // Super users bypass a deny.
    assert_eq!(
        decide(&deny_all, "User:root", topic(Write, "t")),
        Decision::SuperUser
    );
    // No ACL on the resource: the default (denied), for anyone.
    assert_eq!(decide(&[], alice, topic(Read, "t")), Decision::DeniedNoAcl);
    // ACLs on the resource, none for alice: denied, not the default.
    let bob_reads = [topic_acl("t", Literal, "User:bob", Read, true)];
    assert_eq!(
        decide(&bob_reads, alice, topic(Read, "t")),
        Decision::DeniedNoMatch
    );
    assert_eq!(
        decide(&bob_reads, "User:bob", topic(Read, "t")),
        Decision::AllowedByAcl
    );
    // Literal is exact: a literal ACL on "t" does not cover "tt".
    assert_eq!(
        decide(&bob_reads, "User:bob", topic(Read, "tt")),
        Decision::DeniedNoAcl
    );
    // Literal * covers every name; User:* every principal.
    let everyone = [topic_acl("*", Literal, "User:*", Read, true)];
    assert_eq!(
        decide(&everyone, alice, topic(Read, "anything")),
        Decision::AllowedByAcl
    );
    // Prefixed covers names starting with it, including itself; not shorter ones.
    let prefixed = [topic_acl("orders-", Prefixed, alice, Write, true)];
    assert_eq!(
        decide(&prefixed, alice, topic(Write, "orders-eu")),
        Decision::AllowedByAcl
    );
    assert_eq!(
        decide(&prefixed, alice, topic(Write, "orders-")),
        Decision::AllowedByAcl
    );
    assert_eq!(
        decide(&prefixed, alice, topic(Write, "orders")),
        Decision::DeniedNoAcl
    );
    // A literal "*" is the wildcard, but a prefixed "*" is just the prefix "*".
    let star_prefix = [topic_acl("*", Prefixed, alice, Write, true)];
    assert_eq!(
        decide(&star_prefix, alice, topic(Write, "x")),
        Decision::DeniedNoAcl
    );
    assert_eq!(
        decide(&star_prefix, alice, topic(Write, "*x")),
        Decision::AllowedByAcl
    );
    // Deny wins over allow, across patterns.
    let both = [
        topic_acl("orders-", Prefixed, alice, All, true),
        topic_acl("orders-eu", Literal, alice, Write, false),
    ];
    assert_eq!(
        decide(&both, alice, topic(Write, "orders-eu")),
        Decision::DeniedByAcl
    );
    assert_eq!(
        decide(&both, alice, topic(Read, "orders-eu")),
        Decision::AllowedByAcl
    );
    // A deny on User:* applies to alice too.
    let deny_everyone = [
        topic_acl("t", Literal, alice, Write, true),
        topic_acl("t", Literal, "User:*", Write, false),
    ];
    assert_eq!(
        decide(&deny_everyone, alice, topic(Write, "t")),
        Decision::DeniedByAcl
    );
    // Implied: READ/WRITE/DELETE/ALTER allow DESCRIBE; ALTER_CONFIGS allows
    // DESCRIBE_CONFIGS; nothing else is implied.
    for granted in [Read, Write, Delete, Alter, Describe, All] {
        let acls = [topic_acl("t", Literal, alice, granted, true)];
        assert_eq!(
            decide(&acls, alice, topic(Describe, "t")),
            Decision::AllowedByAcl,
            "{granted}"
        );
    }
    for granted in [
        Create,
        AlterConfigs,
        DescribeConfigs,
        ClusterAction,
        IdempotentWrite,
    ] {
        let acls = [topic_acl("t", Literal, alice, granted, true)];
        assert!(
            !decide(&acls, alice, topic(Describe, "t")).is_allowed(),
            "{granted}"
        );
    }
    let alter_configs = [topic_acl("t", Literal, alice, AlterConfigs, true)];
    let d = decide(&alter_configs, alice, topic(DescribeConfigs, "t"));
    assert_eq!(d, Decision::AllowedByAcl);
    let write_only = [topic_acl("t", Literal, alice, Write, true)];
    assert_eq!(
        decide(&write_only, alice, topic(Read, "t")),
        Decision::DeniedNoMatch
    );
    // A deny does not imply: DENY READ leaves DESCRIBE to the allows.
    let deny_read = [
        topic_acl("t", Literal, alice, Describe, true),
        topic_acl("t", Literal, alice, Read, false),
    ];
    assert_eq!(
        decide(&deny_read, alice, topic(Describe, "t")),
        Decision::AllowedByAcl
    );
    assert_eq!(
        decide(&deny_read, alice, topic(Read, "t")),
        Decision::DeniedByAcl
    );
    // Hosts: * or the exact host.
    let other_host = [acl(
        ResourceType::Topic,
        "t",
        Literal,
        alice,
        "10.9.9.9",
        Read,
        AclPermissionType::Allow,
    )];
    assert_eq!(
        decide(&other_host, alice, topic(Read, "t")),
        Decision::DeniedNoMatch
    );
    let this_host = [acl(
        ResourceType::Topic,
        "t",
        Literal,
        alice,
        "10.0.0.1",
        Read,
        AclPermissionType::Allow,
    )];
    assert_eq!(
        decide(&this_host, alice, topic(Read, "t")),
        Decision::AllowedByAcl
    );
    // Resource types are separate: a group ACL says nothing about a topic of that name.
    let group = [acl(
        ResourceType::Group,
        "t",
        Literal,
        alice,
        "*",
        Read,
        AclPermissionType::Allow,
    )];
    assert_eq!(
        decide(&group, alice, topic(Read, "t")),
        Decision::DeniedNoAcl
    );
    // allow.everyone.if.no.acl.found: only where no ACL covers the resource.
    let mut open = on();
    open.allow_everyone_if_no_acl_found = true;
    let set: BTreeSet<Acl> = bob_reads.iter().cloned().collect();
    assert_eq!(
        authorize(&set, &open, alice, "h", topic(Read, "u")),
        Decision::AllowedNoAcl
    );
    assert_eq!(
        authorize(&set, &open, alice, "h", topic(Read, "t")),
        Decision::DeniedNoMatch
    );
}

// Goal: Kafka's creation checks. Method: one binding per rule, and a valid one.
#[test]
fn creations_are_validated_as_kafka() {
    let good = topic_acl("t", Literal, "User:alice", Read, true).0;
    assert_eq!(validate_binding(&good), Ok(()));
    let mut cases: Vec<(AclBinding, &str)> = Vec::new();
    let mut b = good.clone();
    b.pattern_type = PatternType::Match;
    cases.push((b, "patternType"));
    let mut b = good.clone();
    b.pattern_type = PatternType::Any;
    cases.push((b, "patternType"));
    let mut b = good.clone();
    b.resource_type = ResourceType::Any;
    cases.push((b, "resourceType"));
    let mut b = good.clone();
    b.operation = Any;
    cases.push((b, "operation"));
    let mut b = good.clone();
    b.permission_type = AclPermissionType::Any;
    cases.push((b, "permissionType"));
    let mut b = good.clone();
    b.operation = Unknown;
    cases.push((b, "operation"));
    let mut b = good.clone();
    b.principal = "alice".into();
    cases.push((b, "principal"));
    let mut b = good.clone();
    b.resource_name = String::new();
    cases.push((b, "empty"));
    let mut b = good.clone();
    b.resource_type = ResourceType::Cluster;
    cases.push((b, "kafka-cluster"));
    for (binding, expected) in cases {
        let error = validate_binding(&binding).expect_err("refused");
        assert!(error.contains(expected), "{binding:?}: {error}");
    }
    let mut cluster = good;
    cluster.resource_type = ResourceType::Cluster;
    cluster.resource_name = CLUSTER_NAME.into();
    assert_eq!(validate_binding(&cluster), Ok(()));
}

// Goal: filters select as Kafka's AclBindingFilter does, MATCH included. Method: a set of
// bindings and filters with the expected selections.
#[test]
fn filters_match_as_kafka() {
    let exact = topic_acl("orders", Literal, "User:a", Read, true).0;
    let star = topic_acl("*", Literal, "User:a", Read, true).0;
    let prefix = topic_acl("ord", Prefixed, "User:b", Write, false).0;
    let other = topic_acl("audit", Literal, "User:a", Read, true).0;
    let all = [&exact, &star, &prefix, &other];
    let select =
        |f: &AclFilter| -> Vec<bool> { all.iter().map(|b| filter_matches(f, b)).collect() };
    assert_eq!(select(&AclFilter::any()), [true, true, true, true]);
    let mut f = AclFilter::any();
    f.pattern_type = PatternType::Match;
    f.resource_name = Some("orders".into());
    assert_eq!(select(&f), [true, true, true, false]);
    f.pattern_type = Literal;
    assert_eq!(select(&f), [true, false, false, false]);
    f.pattern_type = PatternType::Any;
    assert_eq!(select(&f), [true, false, false, false]);
    let mut f = AclFilter::any();
    f.principal = Some("User:b".into());
    assert_eq!(select(&f), [false, false, true, false]);
    let mut f = AclFilter::any();
    f.permission_type = AclPermissionType::Deny;
    assert_eq!(select(&f), [false, false, true, false]);
    let mut f = AclFilter::any();
    f.resource_type = ResourceType::Group;
    assert_eq!(select(&f), [false, false, false, false]);
    let mut bad = AclFilter::any();
    bad.operation = Unknown;
    assert!(validate_filter(&bad).is_err());
    assert_eq!(validate_filter(&AclFilter::any()), Ok(()));
}

// Goal: the ACL record encoding is the codes, stable across builds. Method: postcard
// round trip, and an Unknown code survives as Unknown.
#[test]
fn stored_acls_round_trip() {
    let a = topic_acl("t", Prefixed, "User:a", IdempotentWrite, false);
    let bytes = postcard::to_allocvec(&a).expect("encodes");
    assert_eq!(postcard::from_bytes::<Acl>(&bytes).expect("decodes"), a);
}

/// The reference: StandardAuthorizer's rules stated directly over every ACL.
fn reference(acls: &[Acl], principal: &str, host: &str, action: Action<'_>) -> bool {
    let cfg = on();
    if cfg.super_users.contains(principal) {
        return true;
    }
    let covers = |b: &AclBinding| {
        b.resource_type == action.resource_type
            && match b.pattern_type {
                Literal => b.resource_name == action.name || b.resource_name == "*",
                Prefixed => action.name.starts_with(b.resource_name.as_str()),
                _ => false,
            }
    };
    let who = |b: &AclBinding| {
        (b.principal == principal || b.principal == "User:*") && (b.host == "*" || b.host == host)
    };
    let covering: Vec<&AclBinding> = acls.iter().map(|a| &a.0).filter(|b| covers(b)).collect();
    if covering.is_empty() {
        return cfg.allow_everyone_if_no_acl_found;
    }
    let deny = covering.iter().any(|b| {
        who(b)
            && b.permission_type == AclPermissionType::Deny
            && (b.operation == All || b.operation == action.operation)
    });
    let allow = covering.iter().any(|b| {
        who(b)
            && b.permission_type == AclPermissionType::Allow
            && (b.operation == All
                || b.operation == action.operation
                || (action.operation == Describe
                    && matches!(b.operation, Read | Write | Delete | Alter))
                || (action.operation == DescribeConfigs && b.operation == AlterConfigs))
    });
    !deny && allow
}

fn arb_acl() -> impl Strategy<Value = Acl> {
    let names = prop::sample::select(vec!["a", "ab", "abc", "b", "*", "*a", "ba"]);
    let principals = prop::sample::select(vec!["User:x", "User:y", "User:*", "User:admin"]);
    let hosts = prop::sample::select(vec!["*", "h1", "h2"]);
    let ops = prop::sample::select(AclOperation::ALL_VALUES[1..].to_vec());
    let rtypes = prop::sample::select(vec![ResourceType::Topic, ResourceType::Group]);
    (
        rtypes,
        names,
        any::<bool>(),
        principals,
        hosts,
        ops,
        any::<bool>(),
    )
        .prop_map(|(rt, name, prefixed, principal, host, op, allow)| {
            let pattern = if prefixed { Prefixed } else { Literal };
            let permission = if allow {
                AclPermissionType::Allow
            } else {
                AclPermissionType::Deny
            };
            acl(rt, name, pattern, principal, host, op, permission)
        })
}

proptest! {
    // Goal: the ranged lookup decides exactly as a scan of every ACL under the stated
    // rules. Method: random small ACL sets over overlapping names, principals, hosts and
    // operations; every request over the same vocabulary.
    #[test]
    fn authorize_agrees_with_a_full_scan(
        acls in prop::collection::vec(arb_acl(), 0..12),
        principal in prop::sample::select(vec!["User:x", "User:y", "User:admin"]),
        host in prop::sample::select(vec!["h1", "h2"]),
        name in prop::sample::select(vec!["a", "ab", "abc", "b", "*", "*a", "ba", "c"]),
        op in prop::sample::select(AclOperation::ALL_VALUES[2..].to_vec()),
        group in any::<bool>(),
    ) {
        let resource_type = if group { ResourceType::Group } else { ResourceType::Topic };
        let action = Action { operation: op, resource_type, name };
        let set: BTreeSet<Acl> = acls.iter().cloned().collect();
        let got = authorize(&set, &on(), principal, host, action).is_allowed();
        prop_assert_eq!(got, reference(&acls, principal, host, action));
    }
}
