//! `weir group list|describe|reset-offsets|delete`: consumer-group administration over the
//! Kafka protocol (like `kafka-consumer-groups.sh`), through weir-client's [`Admin`], so it
//! works against any broker.
//!
//! `reset-offsets` follows Kafka's tool: a dry run by default (prints the plan), `--execute`
//! commits it, and it refuses while the group has members (state other than Empty/Dead),
//! because a live member would overwrite the new offsets with its next commit.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::{bail, Context};
use weir_client::{Admin, GroupDescription, OffsetSpec, TopicPartition};
use weir_runtime::TokioRuntime;

use super::topic::BootstrapArgs;

/// `weir group ...`.
#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GroupCommand {
    /// List consumer groups.
    List(ListArgs),
    /// Show a group's members, assignments, committed offsets and lag.
    Describe(DescribeArgs),
    /// Plan (default) or apply (--execute) new committed offsets for an inactive group.
    ResetOffsets(ResetArgs),
    /// Delete inactive groups and their committed offsets.
    Delete(DeleteArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Also print each group's state and protocol type.
    #[arg(long)]
    state: bool,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct DescribeArgs {
    /// Group id.
    group: String,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args([
    "to_earliest", "to_latest", "to_datetime", "to_offset"
])))]
struct ResetArgs {
    /// Group id.
    group: String,
    /// Topic, or TOPIC:P1,P2 for some partitions; repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]", required = true)]
    topics: Vec<String>,
    /// Reset to the log start offset.
    #[arg(long = "to-earliest")]
    to_earliest: bool,
    /// Reset to the log end offset.
    #[arg(long = "to-latest")]
    to_latest: bool,
    /// Reset to the first offset at or after this time (YYYY-MM-DDTHH:MM:SS[.sss][Z|±HH:MM];
    /// UTC when no zone is given).
    #[arg(long = "to-datetime", value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// Reset to this offset (clamped to the log's range, as Kafka does).
    #[arg(long = "to-offset", value_name = "N")]
    to_offset: Option<i64>,
    /// Commit the plan (default: only print it).
    #[arg(long)]
    execute: bool,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct DeleteArgs {
    /// Group ids.
    #[arg(required = true)]
    groups: Vec<String>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

/// Runs a `weir group` subcommand.
pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let result = match args.command {
        GroupCommand::List(args) => list(args).await,
        GroupCommand::Describe(args) => describe(args).await,
        GroupCommand::ResetOffsets(args) => reset_offsets(args).await,
        GroupCommand::Delete(args) => delete(args).await,
    };
    match result {
        // The reader went away (`| head`): not an error, as for Kafka's tools.
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

async fn connect(bootstrap: &BootstrapArgs) -> anyhow::Result<Admin<TokioRuntime>> {
    let runtime = TokioRuntime::new(u64::from(std::process::id()));
    Admin::connect(runtime, bootstrap.client_config()?)
        .await
        .with_context(|| format!("cannot reach {}", bootstrap.bootstrap_server))
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    let groups = admin.list_groups().await?;
    let mut out = std::io::stdout().lock();
    if args.state {
        let rows = (groups.iter())
            .map(|g| vec![g.group_id.clone(), g.state.clone(), g.protocol_type.clone()])
            .collect();
        write_table(&mut out, &["GROUP", "STATE", "PROTOCOL-TYPE"], rows)?;
    } else {
        for group in groups {
            writeln!(out, "{}", group.group_id)?;
        }
    }
    Ok(())
}

/// One row of `describe`: a partition the group owns or has an offset for.
struct PartitionRow {
    committed: Option<i64>,
    log_end: Option<i64>,
    owner: Option<usize>,
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    let group = admin.describe_group(&args.group).await?;
    let committed = admin.list_group_offsets(&args.group, None).await?;
    let mut rows: BTreeMap<TopicPartition, PartitionRow> = BTreeMap::new();
    for (tp, offset) in &committed {
        let row = PartitionRow {
            committed: Some(*offset),
            log_end: None,
            owner: None,
        };
        rows.insert(tp.clone(), row);
    }
    for (index, member) in group.members.iter().enumerate() {
        for tp in &member.assignment {
            let row = rows.entry(tp.clone()).or_insert(PartitionRow {
                committed: None,
                log_end: None,
                owner: None,
            });
            row.owner = Some(index);
        }
    }
    // Log end offsets one partition at a time: a deleted topic must not hide the others.
    for (tp, row) in &mut rows {
        let query = vec![(tp.clone(), OffsetSpec::Latest)];
        if let Ok(answers) = admin.list_offsets(query).await {
            row.log_end = answers.first().map(|answer| answer.offset);
        }
    }
    let mut out = std::io::stdout().lock();
    print_description(&mut out, &group, &rows)?;
    Ok(())
}

fn print_description(
    out: &mut impl Write,
    group: &GroupDescription,
    rows: &BTreeMap<TopicPartition, PartitionRow>,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "GROUP {}  STATE {}  PROTOCOL {}  MEMBERS {}  COORDINATOR {}",
        group.group_id,
        group.state,
        if group.protocol.is_empty() {
            "-"
        } else {
            &group.protocol
        },
        group.members.len(),
        group.coordinator
    )?;
    if group.members.is_empty() {
        writeln!(
            out,
            "\nConsumer group '{}' has no active members.",
            group.group_id
        )?;
    }
    writeln!(out)?;
    let dash = || "-".to_owned();
    let table: Vec<Vec<String>> = (rows.iter())
        .map(|(tp, row)| {
            let lag = match (row.committed, row.log_end) {
                (Some(committed), Some(log_end)) => (log_end - committed).max(0).to_string(),
                _ => dash(),
            };
            let member = row.owner.and_then(|index| group.members.get(index));
            vec![
                group.group_id.clone(),
                tp.topic.clone(),
                tp.partition.to_string(),
                row.committed.map_or_else(dash, |o| o.to_string()),
                row.log_end.map_or_else(dash, |o| o.to_string()),
                lag,
                member.map_or_else(dash, |m| m.member_id.clone()),
                member.map_or_else(dash, |m| m.client_host.clone()),
                member.map_or_else(dash, |m| m.client_id.clone()),
            ]
        })
        .collect();
    let header = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ];
    write_table(out, &header, table)?;
    if !group.members.is_empty() {
        writeln!(out)?;
        let members = (group.members.iter())
            .map(|m| {
                let assignment = (m.assignment.iter())
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                vec![
                    m.member_id.clone(),
                    m.client_host.clone(),
                    m.client_id.clone(),
                    m.assignment.len().to_string(),
                    if assignment.is_empty() {
                        dash()
                    } else {
                        assignment
                    },
                ]
            })
            .collect();
        let header = [
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
            "#PARTITIONS",
            "ASSIGNMENT",
        ];
        write_table(out, &header, members)?;
    }
    Ok(())
}

/// Where `reset-offsets` moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetTarget {
    Earliest,
    Latest,
    Timestamp(i64),
    Offset(i64),
}

async fn reset_offsets(args: ResetArgs) -> anyhow::Result<()> {
    let target = if args.to_earliest {
        ResetTarget::Earliest
    } else if args.to_latest {
        ResetTarget::Latest
    } else if let Some(text) = &args.to_datetime {
        ResetTarget::Timestamp(parse_datetime_ms(text)?)
    } else if let Some(offset) = args.to_offset {
        ResetTarget::Offset(offset)
    } else {
        bail!("one of --to-earliest, --to-latest, --to-datetime, --to-offset is required");
    };
    let admin = connect(&args.bootstrap).await?;
    let group = admin.describe_group(&args.group).await?;
    if !matches!(group.state.as_str(), "Empty" | "Dead") {
        bail!(
            "Assignments can only be reset if the group '{}' is inactive, but the current \
             state is {}.",
            args.group,
            group.state
        );
    }
    let partitions = resolve_partitions(&admin, &args.topics).await?;
    let plan = plan_offsets(&admin, &partitions, target).await?;
    let rows = (plan.iter())
        .map(|(tp, offset)| {
            let row = [&args.group, &tp.topic];
            let mut row: Vec<String> = row.iter().map(|s| (*s).clone()).collect();
            row.push(tp.partition.to_string());
            row.push(offset.to_string());
            row
        })
        .collect();
    let mut out = std::io::stdout().lock();
    write_table(
        &mut out,
        &["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
        rows,
    )?;
    if args.execute {
        admin
            .alter_group_offsets(&args.group, &plan)
            .await
            .with_context(|| format!("committing offsets of group {}", args.group))?;
        writeln!(out, "\nCommitted new offsets for group '{}'.", args.group)?;
    } else {
        writeln!(out, "\nDry run: nothing committed; add --execute to apply.")?;
    }
    Ok(())
}

/// `TOPIC` (every partition) or `TOPIC:0,2` into partitions, checked against the cluster.
async fn resolve_partitions(
    admin: &Admin<TokioRuntime>,
    specs: &[String],
) -> anyhow::Result<Vec<TopicPartition>> {
    let mut partitions = BTreeSet::new();
    for spec in specs {
        let (topic, wanted) = match spec.split_once(':') {
            None => (spec.as_str(), None),
            Some((topic, list)) => {
                let parsed: Result<Vec<i32>, _> =
                    list.split(',').map(|p| p.trim().parse::<i32>()).collect();
                let parsed = parsed.with_context(|| format!("--topic {spec}"))?;
                (topic, Some(parsed))
            }
        };
        let described = admin.describe_topics(&[topic.to_owned()]).await?;
        let Some(Ok(description)) = described.into_iter().next() else {
            bail!("topic {topic} does not exist");
        };
        let existing: BTreeSet<i32> = description.partitions.iter().map(|p| p.partition).collect();
        for partition in wanted.unwrap_or_else(|| existing.iter().copied().collect()) {
            if !existing.contains(&partition) {
                bail!("topic {topic} has no partition {partition}");
            }
            partitions.insert(TopicPartition::new(topic, partition));
        }
    }
    Ok(partitions.into_iter().collect())
}

async fn plan_offsets(
    admin: &Admin<TokioRuntime>,
    partitions: &[TopicPartition],
    target: ResetTarget,
) -> anyhow::Result<Vec<(TopicPartition, i64)>> {
    let query = |spec: OffsetSpec| partitions.iter().map(|tp| (tp.clone(), spec)).collect();
    let offsets_of = |answers: Vec<weir_client::ListedOffset>| -> BTreeMap<TopicPartition, i64> {
        (answers.into_iter())
            .map(|answer| (answer.topic_partition, answer.offset))
            .collect()
    };
    let earliest = offsets_of(admin.list_offsets(query(OffsetSpec::Earliest)).await?);
    let latest = offsets_of(admin.list_offsets(query(OffsetSpec::Latest)).await?);
    let by_time = match target {
        ResetTarget::Timestamp(ms) => {
            offsets_of(admin.list_offsets(query(OffsetSpec::Timestamp(ms))).await?)
        }
        _ => BTreeMap::new(),
    };
    let mut plan = Vec::with_capacity(partitions.len());
    for tp in partitions {
        let low = earliest.get(tp).copied().unwrap_or(0);
        let high = latest.get(tp).copied().unwrap_or(low);
        let offset = match target {
            ResetTarget::Earliest => low,
            ResetTarget::Latest => high,
            // No record at or after the time: the log end, as Kafka's tool does.
            ResetTarget::Timestamp(_) => match by_time.get(tp).copied() {
                Some(found) if found >= 0 => found,
                _ => high,
            },
            ResetTarget::Offset(offset) => offset.clamp(low, high.max(low)),
        };
        plan.push((tp.clone(), offset));
    }
    Ok(plan)
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    let results = admin.delete_groups(args.groups).await?;
    let mut failed = 0;
    for (group, result) in results {
        match result {
            Ok(()) => println!("Deletion of consumer group '{group}' was successful."),
            Err(error) => {
                failed += 1;
                eprintln!("weir: deleting group '{group}': {error}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} group(s) not deleted");
    }
    Ok(())
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM|±HHMM]`; no zone
/// means UTC (Kafka's tool uses the local zone; a server-side tool should not depend on it).
fn parse_datetime_ms(text: &str) -> anyhow::Result<i64> {
    let bad = || anyhow::anyhow!("--to-datetime {text:?}: expected YYYY-MM-DDTHH:MM:SS[.sss][Z]");
    let (date, rest) = text.split_once('T').ok_or_else(bad)?;
    let mut fields = date.split('-');
    let mut next = |len: usize| -> anyhow::Result<i64> {
        let field = fields.next().ok_or_else(bad)?;
        if field.len() != len {
            return Err(bad());
        }
        field.parse().map_err(|_| bad())
    };
    let (year, month, day) = (next(4)?, next(2)?, next(2)?);
    // Split off the zone: Z, +HH:MM or -HH:MM after the seconds.
    let (time, offset_minutes) = if let Some(time) = rest.strip_suffix('Z') {
        (time, 0)
    } else if let Some(index) = rest.rfind(['+', '-']) {
        let (time, zone) = rest.split_at(index);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
        if digits.len() != 4 {
            return Err(bad());
        }
        let hours: i64 = digits[..2].parse().map_err(|_| bad())?;
        let minutes: i64 = digits[2..].parse().map_err(|_| bad())?;
        (time, sign * (hours * 60 + minutes))
    } else {
        (rest, 0)
    };
    let (clock, millis) = match time.split_once('.') {
        None => (time, 0),
        Some((clock, fraction)) => {
            let digits: String = fraction.chars().take(3).collect();
            let padded = format!("{digits:0<3}");
            (clock, padded.parse::<i64>().map_err(|_| bad())?)
        }
    };
    let parts: Vec<i64> = clock
        .split(':')
        .map(|p| p.parse::<i64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [hour, minute, second] = parts[..] else {
        return Err(bad());
    };
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..61).contains(&second);
    if !valid {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March = 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Left-aligned columns separated by two spaces, like Kafka's tools.
fn write_table(
    out: &mut impl Write,
    header: &[&str],
    rows: Vec<Vec<String>>,
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = (cells.iter().zip(&widths))
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // Goal: --to-datetime parses Kafka's formats to the right instant, and tables align.
    // Method: known instants (checked with `date -u -d ... +%s`), a small table.
    use super::*;

    #[test]
    fn parses_datetimes() {
        let ms = |text| parse_datetime_ms(text).ok();
        assert_eq!(ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ms("2026-11-25T10:00:00Z"), Some(1_795_600_800_000));
        assert_eq!(ms("2026-11-25T10:00:00.250"), Some(1_795_600_800_250));
        assert_eq!(ms("2026-11-25T12:00:00+02:00"), Some(1_795_600_800_000));
        assert_eq!(ms("2000-02-29T00:00:00-0130"), Some(951_787_800_000));
        assert_eq!(ms("2026-13-01T00:00:00Z"), None);
        assert_eq!(ms("yesterday"), None);
    }

    #[test]
    fn aligns_tables() {
        let mut out = Vec::new();
        let rows = vec![vec!["g".to_owned(), "12345".to_owned()]];
        assert!(write_table(&mut out, &["GROUP", "LAG"], rows).is_ok());
        assert_eq!(String::from_utf8_lossy(&out), "GROUP  LAG\ng      12345\n");
    }
}
