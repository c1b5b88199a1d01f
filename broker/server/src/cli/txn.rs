//! `weir txn list|describe|producers`: the transaction views of `kafka-transactions.sh`,
//! over the Kafka protocol (ListTransactions, DescribeTransactions, DescribeProducers)
//! through weir-client's [`Admin`], so they work against any broker.
//!
//! Output is a left-aligned table per command; times are UTC (`2026-11-25T10:00:00.000Z`),
//! `-` marks an absent value (no ongoing transaction, no open transaction on a partition).
//! An id or partition the broker cannot describe is reported on stderr and makes the
//! command exit non-zero after printing the others.

use std::io::Write;

use anyhow::{bail, Context};
use weir_client::{Admin, TopicPartition, TransactionDescription};
use weir_runtime::{Runtime, TokioRuntime};

use super::topic::BootstrapArgs;

/// `weir txn ...`.
#[derive(Debug, clap::Args)]
pub struct TxnArgs {
    #[command(subcommand)]
    command: TxnCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TxnCommand {
    /// List transactional ids with their producer id and state.
    List(ListArgs),
    /// Show transactions: state, producer id/epoch, timeout, start time, partitions.
    Describe(DescribeArgs),
    /// Show the producers active on a topic's partitions.
    Producers(ProducersArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only transactions in this state (Empty, Ongoing, PrepareCommit, PrepareAbort,
    /// CompleteCommit, CompleteAbort); repeatable.
    #[arg(long = "state", value_name = "STATE")]
    states: Vec<String>,
    /// Only transactions of this producer id; repeatable.
    #[arg(long = "producer-id", value_name = "ID")]
    producer_ids: Vec<i64>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct DescribeArgs {
    /// Transactional ids.
    #[arg(required = true, value_name = "TRANSACTIONAL-ID")]
    transactional_ids: Vec<String>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct ProducersArgs {
    /// Topic.
    #[arg(long)]
    topic: String,
    /// Only this partition (default: every partition of the topic).
    #[arg(long)]
    partition: Option<i32>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

/// Runs a `weir txn` subcommand.
pub async fn run(args: TxnArgs) -> anyhow::Result<()> {
    let result = match args.command {
        TxnCommand::List(args) => list(args).await,
        TxnCommand::Describe(args) => describe(args).await,
        TxnCommand::Producers(args) => producers(args).await,
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

async fn connect(bootstrap: &BootstrapArgs) -> anyhow::Result<(TokioRuntime, Admin<TokioRuntime>)> {
    let runtime = TokioRuntime::new(u64::from(std::process::id()));
    let admin = Admin::connect(runtime.clone(), bootstrap.client_config()?)
        .await
        .with_context(|| format!("cannot reach {}", bootstrap.bootstrap_server))?;
    Ok((runtime, admin))
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let (_, admin) = connect(&args.bootstrap).await?;
    let listed = admin
        .list_transactions(&args.states, &args.producer_ids)
        .await?;
    let rows = (listed.into_iter())
        .map(|t| {
            vec![
                t.transactional_id,
                t.coordinator.to_string(),
                t.producer_id.to_string(),
                t.state,
            ]
        })
        .collect();
    let header = ["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"];
    write_table(&mut std::io::stdout().lock(), &header, rows)?;
    Ok(())
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let (runtime, admin) = connect(&args.bootstrap).await?;
    let described = admin.describe_transactions(&args.transactional_ids).await?;
    let now_ms = runtime.wall_ms();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (transactional_id, result) in described {
        match result {
            Ok(txn) => rows.push(describe_row(&txn, now_ms)),
            Err(error) => {
                eprintln!("weir: cannot describe {transactional_id}: {error}");
                failed.push(transactional_id);
            }
        }
    }
    if !rows.is_empty() {
        let header = [
            "TRANSACTIONAL-ID",
            "COORDINATOR",
            "PRODUCER-ID",
            "EPOCH",
            "STATE",
            "TIMEOUT-MS",
            "START-TIME",
            "DURATION-MS",
            "PARTITIONS",
        ];
        write_table(&mut std::io::stdout().lock(), &header, rows)?;
    }
    if !failed.is_empty() {
        bail!("{} transactional id(s) not described", failed.len());
    }
    Ok(())
}

fn describe_row(txn: &TransactionDescription, now_ms: i64) -> Vec<String> {
    let ongoing = txn.start_time_ms >= 0;
    let partitions: Vec<String> = txn.partitions.iter().map(ToString::to_string).collect();
    vec![
        txn.transactional_id.clone(),
        txn.coordinator.to_string(),
        txn.producer_id.to_string(),
        txn.producer_epoch.to_string(),
        txn.state.clone(),
        txn.timeout_ms.to_string(),
        format_time(txn.start_time_ms),
        if ongoing {
            now_ms.saturating_sub(txn.start_time_ms).max(0).to_string()
        } else {
            "-".to_owned()
        },
        if partitions.is_empty() {
            "-".to_owned()
        } else {
            partitions.join(",")
        },
    ]
}

async fn producers(args: ProducersArgs) -> anyhow::Result<()> {
    let (_, admin) = connect(&args.bootstrap).await?;
    let described = admin
        .describe_topics(std::slice::from_ref(&args.topic))
        .await?;
    let Some(Ok(description)) = described.into_iter().next() else {
        bail!("topic {} does not exist", args.topic);
    };
    let mut partitions: Vec<i32> = description.partitions.iter().map(|p| p.partition).collect();
    partitions.sort_unstable();
    if let Some(wanted) = args.partition {
        if !partitions.contains(&wanted) {
            bail!("topic {} has no partition {wanted}", args.topic);
        }
        partitions = vec![wanted];
    }
    let asked: Vec<TopicPartition> = (partitions.into_iter())
        .map(|p| TopicPartition::new(&args.topic, p))
        .collect();
    let answers = admin.describe_producers(&asked).await?;
    let mut rows = Vec::new();
    let mut failed = 0usize;
    for (tp, answer) in answers {
        match answer {
            Ok(producers) => {
                for p in producers {
                    rows.push(vec![
                        tp.topic.clone(),
                        tp.partition.to_string(),
                        p.producer_id.to_string(),
                        p.producer_epoch.to_string(),
                        p.last_sequence.to_string(),
                        format_time(p.last_timestamp),
                        p.current_txn_start_offset
                            .map_or_else(|| "-".to_owned(), |o| o.to_string()),
                    ]);
                }
            }
            Err(error) => {
                eprintln!("weir: cannot describe the producers of {tp}: {error}");
                failed += 1;
            }
        }
    }
    let header = [
        "TOPIC",
        "PARTITION",
        "PRODUCER-ID",
        "EPOCH",
        "LAST-SEQUENCE",
        "LAST-TIMESTAMP",
        "TXN-START-OFFSET",
    ];
    write_table(&mut std::io::stdout().lock(), &header, rows)?;
    if failed > 0 {
        bail!("{failed} partition(s) not described");
    }
    Ok(())
}

/// Wall-clock ms as `YYYY-MM-DDTHH:MM:SS.sssZ` (UTC), `-` when negative (absent).
fn format_time(ms: i64) -> String {
    if ms < 0 {
        return "-".to_owned();
    }
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hours, minutes) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (seconds, millis) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// algorithm, the inverse of `days_from_civil` in group.rs).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    // Goal: times print as UTC instants and rows carry every described field. Method:
    // known instants (checked with `date -u -d @SECONDS`), one hand-made description.
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_795_600_800_250), "2026-11-25T10:00:00.250Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_time(-1), "-");
    }

    #[test]
    fn describe_rows() {
        let txn = TransactionDescription {
            transactional_id: "tid".to_owned(),
            state: "Ongoing".to_owned(),
            producer_id: 7,
            producer_epoch: 2,
            timeout_ms: 60_000,
            start_time_ms: 1_000,
            partitions: vec![TopicPartition::new("a", 0), TopicPartition::new("b", 1)],
            coordinator: 1,
        };
        let row = describe_row(&txn, 3_500);
        assert_eq!(
            row,
            [
                "tid",
                "1",
                "7",
                "2",
                "Ongoing",
                "60000",
                "1970-01-01T00:00:01.000Z",
                "2500",
                "a-0,b-1"
            ]
        );
        let idle = TransactionDescription {
            start_time_ms: -1,
            partitions: Vec::new(),
            ..txn
        };
        let row = describe_row(&idle, 3_500);
        assert_eq!(row[6..], ["-", "-", "-"]);
    }
}
