//! `weir acl add|list|remove`: ACLs over the Kafka protocol (CreateAcls, DescribeAcls,
//! DeleteAcls through weir-client's admin calls), with `kafka-acls.sh`'s flags and output.
//!
//! Flags: `--allow-principal`/`--deny-principal` (`User:alice`, repeatable), `--allow-host`/
//! `--deny-host` (default `*` for each principal kind given), `--operation` (repeatable,
//! Kafka's names in any case: Read, Write, Create, Delete, Alter, Describe, ClusterAction,
//! DescribeConfigs, AlterConfigs, IdempotentWrite, All), resources `--topic`, `--group`,
//! `--transactional-id` (repeatable) and `--cluster`, `--resource-pattern-type`
//! (literal|prefixed for add; also match|any to select), and kafka-acls' conveniences
//! `--producer` (Write, Describe, Create on each topic; Write, Describe on each
//! transactional id; IdempotentWrite on the cluster with `--idempotent`) and `--consumer`
//! (Read, Describe on each topic, Read on each group).
//!
//! Differences from kafka-acls.sh, on purpose: `remove` with principals but no
//! `--operation` removes those principals' ACLs of every operation (kafka-acls would
//! remove only `ALL` entries, which surprises); `remove` without `--force` asks on a
//! terminal and refuses otherwise (kafka-acls would block reading a closed stdin).
//!
//! Output is kafka-acls': "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC,
//! name=t, patternType=LITERAL)`:" then one tab-indented `(principal=User:alice, host=*,
//! operation=READ, permissionType=ALLOW)` per ACL; `add` and `remove` end with the current
//! ACLs of the resources they touched, `list` prints the current ACLs of every matching
//! resource.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use weir_client::acl_admin::{
    AclBinding, AclFilter, AclOperation, AclPermissionType, AclResource, PatternType, ResourceType,
    CLUSTER_RESOURCE_NAME,
};
use weir_client::Admin;
use weir_runtime::TokioRuntime;

use super::topic::BootstrapArgs;

/// `weir acl ...`.
#[derive(Debug, clap::Args)]
pub struct AclArgs {
    #[command(subcommand)]
    command: AclCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AclCommand {
    /// Add ACLs (every principal x host x operation x resource given).
    Add(AclFlags),
    /// List ACLs (of the resources given, or all), optionally of one principal or host.
    List(AclFlags),
    /// Remove ACLs matching the flags (all of a resource when no principal is given).
    Remove(AclFlags),
}

/// The flags of every `weir acl` subcommand, named as kafka-acls.sh names them.
#[derive(Debug, clap::Args)]
struct AclFlags {
    /// Principal allowed, as Type:name (User:alice, User:*); repeatable.
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    allow_principals: Vec<String>,
    /// Principal denied, as Type:name; repeatable.
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    deny_principals: Vec<String>,
    /// Host the allow principals may connect from (default *); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// Host the deny principals are denied from (default *); repeatable.
    #[arg(long = "deny-host", value_name = "HOST")]
    deny_hosts: Vec<String>,
    /// Operation (Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, All); repeatable. Add defaults to All.
    #[arg(long = "operation", value_name = "OPERATION")]
    operations: Vec<String>,
    /// Topic resource; repeatable (`*` = every topic).
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// Consumer group resource; repeatable (`*` = every group).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The cluster resource.
    #[arg(long)]
    cluster: bool,
    /// Transactional id resource; repeatable (`*` = every id).
    #[arg(long = "transactional-id", value_name = "ID")]
    transactional_ids: Vec<String>,
    /// literal or prefixed (add); also match or any for list/remove.
    #[arg(long = "resource-pattern-type", value_name = "TYPE")]
    resource_pattern_type: Option<String>,
    /// list: only ACLs of this principal.
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Option<String>,
    /// list: only ACLs of this host.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Producer convenience: Write, Describe, Create on topics (and transactional ids).
    #[arg(long)]
    producer: bool,
    /// Consumer convenience: Read, Describe on topics, Read on groups (needs --group).
    #[arg(long)]
    consumer: bool,
    /// With --producer: IdempotentWrite on the cluster.
    #[arg(long)]
    idempotent: bool,
    /// remove: do not ask for confirmation.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

/// A resource pattern: type, name and how the name matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pattern {
    resource_type: ResourceType,
    name: String,
    pattern_type: PatternType,
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            self.resource_type, self.name, self.pattern_type
        )
    }
}

/// One access control entry: who, from where, what, allow or deny.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    principal: String,
    host: String,
    operation: AclOperation,
    permission: AclPermissionType,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(principal={}, host={}, operation={}, permissionType={})",
            self.principal, self.host, self.operation, self.permission
        )
    }
}

/// Run `weir acl ...`.
pub async fn run(args: AclArgs) -> anyhow::Result<()> {
    match args.command {
        AclCommand::Add(flags) => add(flags).await,
        AclCommand::List(flags) => list(flags).await,
        AclCommand::Remove(flags) => remove(flags).await,
    }
}

async fn admin(flags: &AclFlags) -> anyhow::Result<Admin<TokioRuntime>> {
    let bootstrap = &flags.bootstrap;
    let runtime = TokioRuntime::from_entropy();
    Admin::connect(runtime, bootstrap.client_config()?)
        .await
        .with_context(|| format!("cannot reach {}", bootstrap.bootstrap_server))
}

async fn add(flags: AclFlags) -> anyhow::Result<()> {
    let to_add = acls_to_add(&flags)?;
    let admin = admin(&flags).await?;
    let mut out = String::new();
    for (pattern, entries) in &to_add {
        out.push_str(&render("Adding ACLs for resource", pattern, entries));
    }
    let bindings = (to_add.iter())
        .flat_map(|(pattern, entries)| entries.iter().map(|entry| binding(pattern, entry)))
        .collect();
    admin.create_acls(bindings).await.context("adding ACLs")?;
    print_current(&admin, to_add.keys(), &mut out).await?;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

async fn list(flags: AclFlags) -> anyhow::Result<()> {
    let filters = list_filters(&flags)?;
    let admin = admin(&flags).await?;
    let mut found: BTreeMap<Pattern, Vec<Entry>> = BTreeMap::new();
    for filter in filters {
        let resources = admin.describe_acls(filter).await.context("listing ACLs")?;
        collect(resources, &mut found);
    }
    let mut out = String::new();
    if let Some(principal) = &flags.principal {
        out.push_str(&format!("ACLs for principal `{principal}`\n"));
    }
    for (pattern, entries) in &found {
        out.push_str(&render("Current ACLs for resource", pattern, entries));
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

async fn remove(flags: AclFlags) -> anyhow::Result<()> {
    let filters = remove_filters(&flags)?;
    if !flags.force {
        confirm(&filters)?;
    }
    let admin = admin(&flags).await?;
    let patterns: Vec<Pattern> = (filters.iter())
        .filter_map(|filter| {
            Some(Pattern {
                resource_type: filter.resource_type,
                name: filter.resource_name.clone()?,
                pattern_type: filter.pattern_type,
            })
        })
        .collect();
    let deleted = admin.delete_acls(filters).await.context("removing ACLs")?;
    let mut out = String::new();
    let mut removed: BTreeMap<Pattern, Vec<Entry>> = BTreeMap::new();
    for acl in deleted {
        let (pattern, entry) = split(acl);
        removed.entry(pattern).or_default().push(entry);
    }
    for (pattern, entries) in &removed {
        out.push_str(&render("Removed ACLs for resource", pattern, entries));
    }
    print_current(&admin, patterns.iter(), &mut out).await?;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

/// Ask on a terminal, as kafka-acls does; refuse when nobody can answer.
fn confirm(filters: &[AclFilter]) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to remove ACLs without --force: stdin is not a terminal to confirm on");
    }
    let mut stderr = std::io::stderr().lock();
    for filter in filters {
        let resource = filter.resource_name.as_deref().unwrap_or("*");
        writeln!(
            stderr,
            "Are you sure you want to remove ACLs matching {} {resource} ({}): principal {}, \
             host {}, operation {}, permission {}? (y/n)",
            filter.resource_type,
            filter.pattern_type,
            filter.principal.as_deref().unwrap_or("any"),
            filter.host.as_deref().unwrap_or("any"),
            filter.operation,
            filter.permission_type,
        )?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            bail!("not removed");
        }
    }
    Ok(())
}

/// Append the current ACLs of each literal or prefixed pattern in `patterns`.
async fn print_current<'a>(
    admin: &Admin<TokioRuntime>,
    patterns: impl Iterator<Item = &'a Pattern>,
    out: &mut String,
) -> anyhow::Result<()> {
    let mut seen = Vec::new();
    for pattern in patterns {
        if seen.contains(pattern)
            || !matches!(
                pattern.pattern_type,
                PatternType::Literal | PatternType::Prefixed
            )
        {
            continue;
        }
        seen.push(pattern.clone());
        let filter = AclFilter {
            resource_type: pattern.resource_type,
            resource_name: Some(pattern.name.clone()),
            pattern_type: pattern.pattern_type,
            ..AclFilter::any()
        };
        let resources = admin.describe_acls(filter).await.context("listing ACLs")?;
        let mut found = BTreeMap::new();
        collect(resources, &mut found);
        let entries = found.remove(pattern).unwrap_or_default();
        out.push_str(&render("Current ACLs for resource", pattern, &entries));
    }
    Ok(())
}

/// kafka-acls' block: "TITLE `PATTERN`: \n \t(entry)\n\t(entry) \n\n".
fn render(title: &str, pattern: &Pattern, entries: &[Entry]) -> String {
    let lines: Vec<String> = entries.iter().map(|entry| format!("\t{entry}")).collect();
    format!("{title} `{pattern}`: \n {} \n\n", lines.join("\n"))
}

fn collect(resources: Vec<AclResource>, into: &mut BTreeMap<Pattern, Vec<Entry>>) {
    for resource in resources {
        let pattern = Pattern {
            resource_type: resource.resource_type,
            name: resource.resource_name,
            pattern_type: resource.pattern_type,
        };
        let entries = into.entry(pattern).or_default();
        for acl in resource.acls {
            let entry = Entry {
                principal: acl.principal,
                host: acl.host,
                operation: acl.operation,
                permission: acl.permission_type,
            };
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        entries.sort();
    }
}

fn binding(pattern: &Pattern, entry: &Entry) -> AclBinding {
    AclBinding {
        resource_type: pattern.resource_type,
        resource_name: pattern.name.clone(),
        pattern_type: pattern.pattern_type,
        principal: entry.principal.clone(),
        host: entry.host.clone(),
        operation: entry.operation,
        permission_type: entry.permission,
    }
}

fn split(acl: AclBinding) -> (Pattern, Entry) {
    (
        Pattern {
            resource_type: acl.resource_type,
            name: acl.resource_name,
            pattern_type: acl.pattern_type,
        },
        Entry {
            principal: acl.principal,
            host: acl.host,
            operation: acl.operation,
            permission: acl.permission_type,
        },
    )
}

// ---- From flags to ACLs and filters (pure; unit-tested below) ----

fn parse_pattern_type(flags: &AclFlags, default: PatternType) -> anyhow::Result<PatternType> {
    let Some(text) = &flags.resource_pattern_type else {
        return Ok(default);
    };
    PatternType::parse(text)
        .with_context(|| format!("--resource-pattern-type {text}: literal, prefixed, match or any"))
}

fn parse_operations(flags: &AclFlags) -> anyhow::Result<Vec<AclOperation>> {
    let mut operations = Vec::new();
    for text in &flags.operations {
        let operation = AclOperation::parse(text)
            .filter(|op| !matches!(op, AclOperation::Any))
            .with_context(|| {
                format!(
                    "--operation {text}: Read, Write, Create, Delete, Alter, Describe, \
                     ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All"
                )
            })?;
        if !operations.contains(&operation) {
            operations.push(operation);
        }
    }
    Ok(operations)
}

fn check_principal(principal: &str) -> anyhow::Result<()> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => bail!("principal {principal}: expected Type:name, e.g. User:alice"),
    }
}

/// The resources named by --topic/--group/--transactional-id/--cluster, with `pattern_type`.
fn resources(flags: &AclFlags, pattern_type: PatternType) -> Vec<Pattern> {
    let mut out = Vec::new();
    let kinds = [
        (ResourceType::Topic, &flags.topics),
        (ResourceType::Group, &flags.groups),
        (ResourceType::TransactionalId, &flags.transactional_ids),
    ];
    for (resource_type, names) in kinds {
        out.extend(names.iter().map(|name| Pattern {
            resource_type,
            name: name.clone(),
            pattern_type,
        }));
    }
    if flags.cluster {
        out.push(Pattern {
            resource_type: ResourceType::Cluster,
            name: CLUSTER_RESOURCE_NAME.into(),
            pattern_type,
        });
    }
    out
}

/// The (principal, host, permission) triples of the flags; hosts default to `*`.
fn who(flags: &AclFlags) -> anyhow::Result<Vec<(String, String, AclPermissionType)>> {
    let mut out = Vec::new();
    let kinds = [
        (
            &flags.allow_principals,
            &flags.allow_hosts,
            AclPermissionType::Allow,
        ),
        (
            &flags.deny_principals,
            &flags.deny_hosts,
            AclPermissionType::Deny,
        ),
    ];
    for (principals, hosts, permission) in kinds {
        if principals.is_empty() && !hosts.is_empty() {
            bail!(
                "--{}-host needs --{}-principal",
                word(permission),
                word(permission)
            );
        }
        let hosts = if hosts.is_empty() {
            vec!["*".to_owned()]
        } else {
            hosts.clone()
        };
        for principal in principals {
            check_principal(principal)?;
            for host in &hosts {
                out.push((principal.clone(), host.clone(), permission));
            }
        }
    }
    Ok(out)
}

fn word(permission: AclPermissionType) -> &'static str {
    match permission {
        AclPermissionType::Deny => "deny",
        _ => "allow",
    }
}

/// `add`: every ACL the flags ask for, grouped by resource pattern.
fn acls_to_add(flags: &AclFlags) -> anyhow::Result<BTreeMap<Pattern, Vec<Entry>>> {
    let pattern_type = parse_pattern_type(flags, PatternType::Literal)?;
    if !matches!(pattern_type, PatternType::Literal | PatternType::Prefixed) {
        bail!("--resource-pattern-type {pattern_type} selects ACLs; add takes literal or prefixed");
    }
    if flags.principal.is_some() || flags.host.is_some() {
        bail!("--principal and --host filter list; add takes --allow-principal/--deny-principal");
    }
    let who = who(flags)?;
    if who.is_empty() {
        bail!("add needs --allow-principal or --deny-principal");
    }
    // (resource pattern, operations) pairs.
    let mut wanted: Vec<(Pattern, Vec<AclOperation>)> = Vec::new();
    if flags.producer || flags.consumer {
        if !flags.operations.is_empty() {
            bail!("--operation cannot be combined with --producer/--consumer");
        }
        wanted.extend(convenience(flags, pattern_type)?);
    } else {
        let mut operations = parse_operations(flags)?;
        if operations.is_empty() {
            operations.push(AclOperation::All);
        }
        let resources = resources(flags, pattern_type);
        if resources.is_empty() {
            bail!("add needs a resource: --topic, --group, --transactional-id or --cluster");
        }
        wanted.extend(
            resources
                .into_iter()
                .map(|pattern| (pattern, operations.clone())),
        );
    }
    let mut out: BTreeMap<Pattern, Vec<Entry>> = BTreeMap::new();
    for (pattern, operations) in wanted {
        let entries = out.entry(pattern).or_default();
        for (principal, host, permission) in &who {
            for &operation in &operations {
                let entry = Entry {
                    principal: principal.clone(),
                    host: host.clone(),
                    operation,
                    permission: *permission,
                };
                if !entries.contains(&entry) {
                    entries.push(entry);
                }
            }
        }
    }
    Ok(out)
}

/// kafka-acls' --producer / --consumer expansions.
fn convenience(
    flags: &AclFlags,
    pattern_type: PatternType,
) -> anyhow::Result<Vec<(Pattern, Vec<AclOperation>)>> {
    use AclOperation::{Create, Describe, IdempotentWrite, Read, Write};
    if flags.topics.is_empty() {
        bail!("--producer and --consumer need --topic");
    }
    if flags.consumer && flags.groups.is_empty() {
        bail!("--consumer needs --group");
    }
    if flags.idempotent && !flags.producer {
        bail!("--idempotent goes with --producer");
    }
    if flags.cluster {
        bail!("--cluster cannot be combined with --producer/--consumer");
    }
    let pattern = |resource_type, name: &str| Pattern {
        resource_type,
        name: name.to_owned(),
        pattern_type,
    };
    let mut out: Vec<(Pattern, Vec<AclOperation>)> = Vec::new();
    let mut push = |pattern: Pattern, operations: &[AclOperation]| match out
        .iter_mut()
        .find(|(p, _)| *p == pattern)
    {
        Some((_, existing)) => {
            for op in operations {
                if !existing.contains(op) {
                    existing.push(*op);
                }
            }
        }
        None => out.push((pattern, operations.to_vec())),
    };
    if flags.producer {
        for topic in &flags.topics {
            push(
                pattern(ResourceType::Topic, topic),
                &[Write, Describe, Create],
            );
        }
        for id in &flags.transactional_ids {
            push(
                pattern(ResourceType::TransactionalId, id),
                &[Write, Describe],
            );
        }
        if flags.idempotent {
            let cluster = Pattern {
                resource_type: ResourceType::Cluster,
                name: CLUSTER_RESOURCE_NAME.into(),
                pattern_type: PatternType::Literal,
            };
            push(cluster, &[IdempotentWrite]);
        }
    }
    if flags.consumer {
        for topic in &flags.topics {
            push(pattern(ResourceType::Topic, topic), &[Read, Describe]);
        }
        for group in &flags.groups {
            push(pattern(ResourceType::Group, group), &[Read]);
        }
    }
    Ok(out)
}

/// `list`: one filter per resource given (or one for all), narrowed by --principal/--host.
fn list_filters(flags: &AclFlags) -> anyhow::Result<Vec<AclFilter>> {
    if let Some(principal) = &flags.principal {
        check_principal(principal)?;
    }
    let base = AclFilter {
        principal: flags.principal.clone(),
        host: flags.host.clone(),
        ..AclFilter::any()
    };
    let resources = resources(flags, parse_pattern_type(flags, PatternType::Literal)?);
    if resources.is_empty() {
        let pattern_type = parse_pattern_type(flags, PatternType::Any)?;
        return Ok(vec![AclFilter {
            pattern_type,
            ..base
        }]);
    }
    Ok(resources
        .into_iter()
        .map(|pattern| AclFilter {
            resource_type: pattern.resource_type,
            resource_name: Some(pattern.name),
            pattern_type: pattern.pattern_type,
            ..base.clone()
        })
        .collect())
}

/// `remove`: one filter per resource x (principal, host, permission) x operation; a
/// resource alone (no principal) removes all its ACLs.
fn remove_filters(flags: &AclFlags) -> anyhow::Result<Vec<AclFilter>> {
    if flags.producer || flags.consumer {
        let pattern_type = parse_pattern_type(flags, PatternType::Literal)?;
        let who = who(flags)?;
        if who.is_empty() {
            bail!("remove --producer/--consumer needs --allow-principal or --deny-principal");
        }
        let mut filters = Vec::new();
        for (pattern, operations) in convenience(flags, pattern_type)? {
            for (principal, host, permission) in &who {
                for &operation in &operations {
                    filters.push(AclFilter {
                        resource_type: pattern.resource_type,
                        resource_name: Some(pattern.name.clone()),
                        pattern_type: pattern.pattern_type,
                        principal: Some(principal.clone()),
                        host: Some(host.clone()),
                        operation,
                        permission_type: *permission,
                    });
                }
            }
        }
        return Ok(filters);
    }
    let pattern_type = parse_pattern_type(flags, PatternType::Literal)?;
    let resources = resources(flags, pattern_type);
    if resources.is_empty() {
        bail!("remove needs a resource: --topic, --group, --transactional-id or --cluster");
    }
    let mut operations = parse_operations(flags)?;
    if operations.is_empty() {
        operations.push(AclOperation::Any);
    }
    let who = who(flags)?;
    let mut filters = Vec::new();
    for pattern in resources {
        let base = AclFilter {
            resource_type: pattern.resource_type,
            resource_name: Some(pattern.name.clone()),
            pattern_type: pattern.pattern_type,
            ..AclFilter::any()
        };
        if who.is_empty() {
            for &operation in &operations {
                filters.push(AclFilter {
                    operation,
                    ..base.clone()
                });
            }
            continue;
        }
        for (principal, host, permission) in &who {
            for &operation in &operations {
                filters.push(AclFilter {
                    principal: Some(principal.clone()),
                    host: Some(host.clone()),
                    operation,
                    permission_type: *permission,
                    ..base.clone()
                });
            }
        }
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AclCommand,
    }

    fn flags(line: &str) -> AclFlags {
        let argv = std::iter::once("acl").chain(line.split_whitespace());
        match Cli::try_parse_from(argv).expect(line).command {
            AclCommand::Add(flags) | AclCommand::List(flags) | AclCommand::Remove(flags) => flags,
        }
    }

    fn shown(acls: &BTreeMap<Pattern, Vec<Entry>>) -> Vec<String> {
        (acls.iter())
            .flat_map(|(pattern, entries)| entries.iter().map(move |e| format!("{pattern} {e}")))
            .collect()
    }

    // Goal: add expands principals x hosts x operations x resources, operation names are
    // case-insensitive Kafka names, hosts default to *. Method: parse flags, compare.
    #[test]
    fn add_expands_the_flags() {
        let acls = acls_to_add(&flags(
            "add --allow-principal User:alice --allow-principal User:bob --operation read \
             --operation DescribeConfigs --topic t --resource-pattern-type PREFIXED",
        ))
        .expect("valid");
        assert_eq!(
            shown(&acls),
            [
                "ResourcePattern(resourceType=TOPIC, name=t, patternType=PREFIXED) \
                 (principal=User:alice, host=*, operation=READ, permissionType=ALLOW)",
                "ResourcePattern(resourceType=TOPIC, name=t, patternType=PREFIXED) \
                 (principal=User:alice, host=*, operation=DESCRIBE_CONFIGS, permissionType=ALLOW)",
                "ResourcePattern(resourceType=TOPIC, name=t, patternType=PREFIXED) \
                 (principal=User:bob, host=*, operation=READ, permissionType=ALLOW)",
                "ResourcePattern(resourceType=TOPIC, name=t, patternType=PREFIXED) \
                 (principal=User:bob, host=*, operation=DESCRIBE_CONFIGS, permissionType=ALLOW)",
            ]
        );
        let deny = acls_to_add(&flags(
            "add --deny-principal User:eve --deny-host 10.0.0.9 --cluster",
        ))
        .expect("valid");
        assert_eq!(
            shown(&deny),
            [
                "ResourcePattern(resourceType=CLUSTER, name=kafka-cluster, patternType=LITERAL) \
              (principal=User:eve, host=10.0.0.9, operation=ALL, permissionType=DENY)"
            ]
        );
    }

    // Goal: --producer and --consumer expand as kafka-acls does. Method: count operations
    // per resource.
    #[test]
    fn producer_and_consumer_conveniences() {
        let acls = acls_to_add(&flags(
            "add --allow-principal User:p --producer --consumer --topic t --group g \
             --transactional-id tx --idempotent",
        ))
        .expect("valid");
        let ops = |resource_type: ResourceType| -> Vec<AclOperation> {
            let (_, entries) = (acls.iter())
                .find(|(p, _)| p.resource_type == resource_type)
                .expect("resource present");
            entries.iter().map(|e| e.operation).collect()
        };
        use AclOperation::*;
        assert_eq!(ops(ResourceType::Topic), [Write, Describe, Create, Read]);
        assert_eq!(ops(ResourceType::TransactionalId), [Write, Describe]);
        assert_eq!(ops(ResourceType::Cluster), [IdempotentWrite]);
        assert_eq!(ops(ResourceType::Group), [Read]);
    }

    // Goal: nonsense is refused before anything is sent. Method: one bad command each.
    #[test]
    fn refusals() {
        for bad in [
            "add --topic t",
            "add --allow-principal alice --topic t",
            "add --allow-principal User:a --operation Fly --topic t",
            "add --allow-principal User:a --operation Any --topic t",
            "add --allow-principal User:a",
            "add --allow-principal User:a --topic t --resource-pattern-type match",
            "add --allow-principal User:a --consumer --topic t",
            "add --allow-principal User:a --producer --topic t --operation Read",
            "add --allow-host 1.2.3.4 --topic t",
        ] {
            assert!(acls_to_add(&flags(bad)).is_err(), "{bad}");
        }
        assert!(remove_filters(&flags("remove --allow-principal User:a")).is_err());
        assert!(list_filters(&flags("list --principal alice")).is_err());
    }

    // Goal: list and remove build the filters kafka-acls would send. Method: compare.
    #[test]
    fn list_and_remove_filters() {
        let all = list_filters(&flags("list --principal User:alice")).expect("valid");
        assert_eq!(
            all,
            [AclFilter {
                principal: Some("User:alice".into()),
                ..AclFilter::any()
            }]
        );
        let topic =
            list_filters(&flags("list --topic t --resource-pattern-type match")).expect("valid");
        assert_eq!(topic[0].resource_type, ResourceType::Topic);
        assert_eq!(topic[0].pattern_type, PatternType::Match);
        let everything = remove_filters(&flags("remove --topic t --force")).expect("valid");
        assert_eq!(
            everything,
            [AclFilter {
                resource_type: ResourceType::Topic,
                resource_name: Some("t".into()),
                pattern_type: PatternType::Literal,
                ..AclFilter::any()
            }]
        );
        let alice = remove_filters(&flags(
            "remove --allow-principal User:alice --operation Read --group g",
        ))
        .expect("valid");
        assert_eq!(alice.len(), 1);
        assert_eq!(alice[0].principal.as_deref(), Some("User:alice"));
        assert_eq!(alice[0].host.as_deref(), Some("*"));
        assert_eq!(alice[0].operation, AclOperation::Read);
        assert_eq!(alice[0].permission_type, AclPermissionType::Allow);
    }

    // Goal: the output reads like kafka-acls'. Method: render one block.
    #[test]
    fn renders_like_kafka_acls() {
        let pattern = Pattern {
            resource_type: ResourceType::Topic,
            name: "t".into(),
            pattern_type: PatternType::Literal,
        };
        let entry = Entry {
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermissionType::Allow,
        };
        assert_eq!(
            render("Current ACLs for resource", &pattern, &[entry]),
            "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t, \
             patternType=LITERAL)`: \n \t(principal=User:alice, host=*, operation=READ, \
             permissionType=ALLOW) \n\n"
        );
    }
}
