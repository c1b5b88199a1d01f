//! `weir produce TOPIC`: a console producer (like `kafka-console-producer.sh`). Each stdin
//! line is one record; with `--key-separator SEP` the text before the first SEP is the key.
//! Progress goes to stderr once a second; the exit status is non-zero if any record failed.

use std::io::BufRead;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use tokio::sync::mpsc;
use weir_client::{Acks, DeliveryFuture, Producer, ProducerConfig};
use weir_runtime::{Runtime, TokioRuntime};

use super::topic::BootstrapArgs;

/// Lines handed over from the blocking stdin reader per round trip.
const LINES_PER_CHUNK_MAX: usize = 10_000;
/// Deliveries awaiting their result in the checker task.
const PENDING_DELIVERIES_MAX: usize = 100_000;

/// `weir produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// Topic to write to.
    topic: String,
    /// Split each line into KEY SEP VALUE at the first SEP (no key without this flag).
    #[arg(long = "key-separator", value_name = "SEP")]
    key_separator: Option<String>,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: Acks,
    /// Write every record to this partition instead of using the default partitioner.
    #[arg(long)]
    partition: Option<i32>,
    /// linger.ms.
    #[arg(long = "linger-ms", default_value_t = 5)]
    linger_ms: u64,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

/// Runs the console producer until stdin ends, then flushes.
pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let runtime = TokioRuntime::new(u64::from(std::process::id()));
    let config = ProducerConfig {
        client: args.bootstrap.client_config()?,
        acks: args.acks,
        linger: Duration::from_millis(args.linger_ms),
        ..ProducerConfig::default()
    };
    let producer = Producer::connect(runtime.clone(), config)
        .await
        .with_context(|| format!("cannot reach {}", args.bootstrap.bootstrap_server))?;
    let (deliveries_tx, deliveries_rx) = mpsc::channel::<DeliveryFuture>(PENDING_DELIVERIES_MAX);
    let (summary_tx, summary_rx) = tokio::sync::oneshot::channel();
    runtime.spawn(check_deliveries(runtime.clone(), deliveries_rx, summary_tx));

    let mut stdin = Some(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()));
    let mut sent = 0u64;
    while let Some(reader) = stdin.take() {
        let (reader, lines) = runtime.offload(move || read_chunk(reader)).await;
        let lines = lines.context("reading stdin")?;
        if lines.is_empty() {
            break;
        }
        stdin = Some(reader);
        for line in lines {
            let (key, value) = split_line(line, args.key_separator.as_deref());
            producer.ready().await;
            let delivery = producer.send(&args.topic, args.partition, key, Some(value), Vec::new());
            sent += 1;
            if deliveries_tx.send(delivery).await.is_err() {
                bail!("delivery checker stopped");
            }
        }
    }
    producer.flush().await;
    drop(deliveries_tx);
    let (acked, failed) = summary_rx.await.unwrap_or((0, sent));
    eprintln!("{sent} records sent, {acked} acknowledged, {failed} failed");
    if failed > 0 {
        bail!("{failed} of {sent} records failed");
    }
    Ok(())
}

/// Reads one line (blocking), then whatever further complete lines are already buffered.
/// Returns no lines at end of input.
fn read_chunk<B: BufRead + BufferedLine>(mut reader: B) -> (B, std::io::Result<Vec<Vec<u8>>>) {
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                lines.push(line);
            }
            Err(error) => return (reader, Err(error)),
        }
        // Only keep going while a complete line is already buffered: an interactive user
        // sees each line sent as soon as it is typed.
        if lines.len() >= LINES_PER_CHUNK_MAX || !reader.has_buffered_line() {
            break;
        }
    }
    (reader, Ok(lines))
}

/// `BufRead` has no non-blocking peek; this answers "is a complete line already buffered",
/// so reading it cannot block.
trait BufferedLine {
    fn has_buffered_line(&self) -> bool;
}

impl<R: std::io::Read> BufferedLine for std::io::BufReader<R> {
    fn has_buffered_line(&self) -> bool {
        self.buffer().contains(&b'\n')
    }
}

fn split_line(line: Vec<u8>, separator: Option<&str>) -> (Option<Bytes>, Bytes) {
    let line = Bytes::from(line);
    let Some(separator) = separator.filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    let separator = separator.as_bytes();
    match line
        .windows(separator.len())
        .position(|window| window == separator)
    {
        Some(at) => (Some(line.slice(..at)), line.slice(at + separator.len()..)),
        // Kafka's console producer rejects such lines; sending them keyless loses nothing.
        None => (None, line),
    }
}

/// Awaits deliveries in send order, reports progress each second, and sends back
/// (acknowledged, failed) when the channel closes.
async fn check_deliveries(
    runtime: TokioRuntime,
    mut deliveries: mpsc::Receiver<DeliveryFuture>,
    summary: tokio::sync::oneshot::Sender<(u64, u64)>,
) {
    let (mut acked, mut failed) = (0u64, 0u64);
    let mut next_report = runtime.now() + Duration::from_secs(1);
    while let Some(delivery) = deliveries.recv().await {
        match delivery.await {
            Ok(_) => acked += 1,
            Err(error) => {
                if failed < 10 {
                    eprintln!("weir: record failed: {error}");
                }
                failed += 1;
            }
        }
        let now = runtime.now();
        if now >= next_report {
            eprintln!(
                "{} records sent ({acked} acknowledged, {failed} failed)",
                acked + failed
            );
            next_report = now + Duration::from_secs(1);
        }
    }
    let _ = summary.send((acked, failed));
}

#[cfg(test)]
mod tests {
    // Goal: line splitting and chunked reading behave like the Kafka console producer.
    // Method: feed byte slices through the helpers.
    use super::*;

    #[test]
    fn splits_at_the_first_separator() {
        let (key, value) = split_line(b"k:v:w".to_vec(), Some(":"));
        assert_eq!(key.as_deref(), Some(&b"k"[..]));
        assert_eq!(&value[..], b"v:w");
        let (key, value) = split_line(b"novalue".to_vec(), Some("::"));
        assert_eq!((key, &value[..]), (None, &b"novalue"[..]));
        let (key, value) = split_line(b"a:b".to_vec(), None);
        assert_eq!((key, &value[..]), (None, &b"a:b"[..]));
    }

    #[test]
    fn reads_buffered_lines_in_one_chunk() {
        let reader = std::io::BufReader::new(&b"one\r\ntwo\nthree"[..]);
        let (reader, lines) = read_chunk(reader);
        let lines = lines.unwrap_or_default();
        assert_eq!(lines, vec![b"one".to_vec(), b"two".to_vec()]);
        let (reader, lines) = read_chunk(reader);
        assert_eq!(lines.unwrap_or_default(), vec![b"three".to_vec()]);
        let (_, lines) = read_chunk(reader);
        assert!(lines.unwrap_or_default().is_empty());
    }
}
