//! `weir consume TOPIC`: a console consumer (like `kafka-console-consumer.sh`) writing one
//! line per record to stdout: the value, or KEY SEP VALUE with `--print-key`. Null keys and
//! values print as `null`, as Kafka's tool does.
//!
//! With `--group G` the consumer joins group G (classic protocol, range assignor) instead of
//! assigning partitions itself: it resumes from the group's committed offsets (`--from`
//! then only picks earliest/latest for partitions without one), auto-commits, and commits
//! and leaves the group on exit.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use weir_client::{AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, GroupConfig, Offset};
use weir_runtime::{Runtime, TokioRuntime};

use super::topic::BootstrapArgs;

/// Longest single poll; keeps `--timeout-ms` and Ctrl-C responsive.
const POLL_SLICE: Duration = Duration::from_millis(1_000);

/// `weir consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    topic: String,
    /// Read only this partition (default: all partitions).
    #[arg(long, conflicts_with = "group")]
    partition: Option<i32>,
    /// Consume as a member of this consumer group (committed offsets, rebalancing).
    #[arg(long)]
    group: Option<String>,
    /// Where to start: earliest, latest, an offset, or ts:MILLIS (first record at or after).
    #[arg(long, default_value = "latest", allow_hyphen_values = true)]
    from: String,
    /// Exit after this many records.
    #[arg(long = "max-messages")]
    max_messages: Option<u64>,
    /// Print keys too.
    #[arg(long = "print-key")]
    print_key: bool,
    /// Between key and value with --print-key.
    #[arg(long = "key-separator", default_value = "\t")]
    key_separator: String,
    /// Exit when no record arrives for this long (default: wait forever).
    #[arg(long = "timeout-ms")]
    timeout_ms: Option<u64>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

/// Runs the console consumer.
pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let start = parse_from(&args.from)?;
    let runtime = TokioRuntime::new(u64::from(std::process::id()));
    let auto_offset_reset = match (&args.group, start) {
        (None, _) | (Some(_), Offset::Earliest) => AutoOffsetReset::Earliest,
        (Some(_), Offset::Latest) => AutoOffsetReset::Latest,
        (Some(_), _) => bail!("with --group, --from must be earliest or latest"),
    };
    let config = ConsumerConfig {
        client: args.bootstrap.client_config()?,
        auto_offset_reset,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::connect(runtime.clone(), config)
        .await
        .with_context(|| format!("cannot reach {}", args.bootstrap.bootstrap_server))?;
    if let Some(group) = &args.group {
        let group_config = GroupConfig::new(group.clone());
        consumer
            .subscribe(group_config, vec![args.topic.clone()])
            .await?;
        let mut printed = 0;
        let result = tokio::select! {
            biased;
            result = print_records(&mut consumer, &runtime, &args, &mut printed) => result,
            // Ctrl-C: leave the group now rather than after the session timeout.
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
        // Commit and leave even when printing stopped on an error.
        consumer.close().await?;
        eprintln!("Processed a total of {printed} messages");
        return result;
    }
    let partitions = match args.partition {
        Some(partition) => vec![partition],
        None => consumer
            .partitions_for(&args.topic)
            .await
            .with_context(|| format!("topic {}", args.topic))?,
    };
    consumer
        .assign(
            partitions
                .iter()
                .map(|&p| (args.topic.clone(), p))
                .collect(),
        )
        .await?;
    for &partition in &partitions {
        consumer
            .seek(&args.topic, partition, start)
            .await
            .with_context(|| format!("seeking {}-{partition} to {}", args.topic, args.from))?;
    }

    let mut printed = 0;
    print_records(&mut consumer, &runtime, &args, &mut printed).await?;
    eprintln!("Processed a total of {printed} messages");
    Ok(())
}

/// Polls and prints until `--max-messages`, `--timeout-ms` idle, or a closed stdout.
async fn print_records(
    consumer: &mut Consumer<TokioRuntime>,
    runtime: &TokioRuntime,
    args: &ConsumeArgs,
    printed: &mut u64,
) -> anyhow::Result<()> {
    let idle_max = args.timeout_ms.map(Duration::from_millis);
    let mut last_record_at = runtime.now();
    let stdout = std::io::stdout();
    loop {
        let records = consumer.poll(POLL_SLICE).await?;
        let now = runtime.now();
        if records.is_empty() {
            if idle_max.is_some_and(|idle| now.saturating_sub(last_record_at) >= idle) {
                break;
            }
            continue;
        }
        last_record_at = now;
        let mut out = stdout.lock();
        for (index, record) in records.iter().enumerate() {
            if args.max_messages.is_some_and(|max| *printed >= max) {
                // Move positions back to the first unprinted record of each partition, so
                // a group commit on exit does not skip records nobody saw.
                rewind(consumer, &records[index..]).await?;
                break;
            }
            if write_record(&mut out, record, args.print_key, &args.key_separator).is_err() {
                // The reader went away (`| head`): stop quietly, like Kafka's tool.
                return Ok(());
            }
            *printed += 1;
        }
        if out.flush().is_err() {
            return Ok(());
        }
        if args.max_messages.is_some_and(|max| *printed >= max) {
            break;
        }
    }
    Ok(())
}

/// Seeks every partition of `unprinted` back to its first unprinted offset.
async fn rewind(
    consumer: &mut Consumer<TokioRuntime>,
    unprinted: &[ConsumerRecord],
) -> anyhow::Result<()> {
    let mut first: std::collections::BTreeMap<(&str, i32), i64> = Default::default();
    for record in unprinted {
        let key = (record.topic.as_str(), record.partition);
        let offset = first.entry(key).or_insert(record.offset);
        *offset = (*offset).min(record.offset);
    }
    for ((topic, partition), offset) in first {
        consumer.seek(topic, partition, Offset::At(offset)).await?;
    }
    Ok(())
}

fn parse_from(text: &str) -> anyhow::Result<Offset> {
    Ok(match text {
        "earliest" | "beginning" => Offset::Earliest,
        "latest" | "end" => Offset::Latest,
        _ => {
            if let Some(ms) = text.strip_prefix("ts:") {
                Offset::Timestamp(ms.parse().with_context(|| format!("--from {text}"))?)
            } else {
                match text.parse::<i64>() {
                    Ok(offset) if offset >= 0 => Offset::At(offset),
                    _ => {
                        bail!("--from {text:?}: expected earliest, latest, an offset or ts:MILLIS")
                    }
                }
            }
        }
    })
}

fn write_record(
    out: &mut impl Write,
    record: &ConsumerRecord,
    print_key: bool,
    separator: &str,
) -> std::io::Result<()> {
    if print_key {
        out.write_all(record.key.as_deref().unwrap_or(b"null"))?;
        out.write_all(separator.as_bytes())?;
    }
    out.write_all(record.value.as_deref().unwrap_or(b"null"))?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    // Goal: --from parsing and record formatting match the documented CLI. Method: table.
    use super::*;

    #[test]
    fn parses_start_positions() {
        assert_eq!(parse_from("earliest").ok(), Some(Offset::Earliest));
        assert_eq!(parse_from("latest").ok(), Some(Offset::Latest));
        assert_eq!(parse_from("42").ok(), Some(Offset::At(42)));
        assert_eq!(
            parse_from("ts:1700000000000").ok(),
            Some(Offset::Timestamp(1_700_000_000_000))
        );
        assert!(parse_from("-1").is_err());
        assert!(parse_from("ts:x").is_err());
    }

    #[test]
    fn formats_key_and_null_value() {
        let record = ConsumerRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: Some(bytes::Bytes::from_static(b"k")),
            value: None,
            headers: Vec::new(),
        };
        let mut out = Vec::new();
        assert!(write_record(&mut out, &record, true, ":").is_ok());
        assert_eq!(out, b"k:null\n");
    }
}
