//! `weir bench produce|consume|loopback`: load generators in the spirit of
//! `kafka-producer-perf-test.sh` / `kafka-consumer-perf-test.sh`, plus a loopback TCP probe
//! so results can be quoted as a ratio to this machine's limit.
//!
//! Output follows Kafka's perf tools (MB = 2^20 bytes, as Kafka prints it): a progress line
//! per second on stderr and one summary line on stdout. Latencies are kept as a sorted
//! vector of microseconds (4 bytes per record) — exact percentiles, no extra dependency.
//! Produce latency is send -> acknowledgement, observed in send order (a record acked before
//! an earlier one is counted when the earlier one completes, so it is an upper bound).

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use weir_client::{
    Acks, AutoOffsetReset, Consumer, ConsumerConfig, DeliveryFuture, Offset, Producer,
    ProducerConfig,
};
use weir_runtime::{Listener, Runtime, TokioRuntime};

use super::topic::BootstrapArgs;

/// Sends awaiting their acknowledgement in the latency recorder.
const PENDING_SENDS_MAX: usize = 1 << 20;
/// Loopback write size: 1 MiB writes reach the loopback's throughput limit.
const LOOPBACK_CHUNK_BYTES: usize = 1 << 20;
const MIB: f64 = 1024.0 * 1024.0;

/// `weir bench ...`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Produce N records as fast as possible; report throughput and send->ack latency.
    Produce(ProduceBenchArgs),
    /// Consume N records from the earliest offsets; report throughput and poll latency.
    Consume(ConsumeBenchArgs),
    /// Measure this machine's loopback TCP throughput (one stream, 1 MiB writes).
    Loopback(LoopbackArgs),
}

#[derive(Debug, clap::Args)]
struct ProduceBenchArgs {
    /// Topic (created by the broker on first use if auto-creation is on).
    #[arg(long)]
    topic: String,
    /// Records to send.
    #[arg(long = "num-records")]
    num_records: u64,
    /// Value size in bytes.
    #[arg(long = "record-size", default_value_t = 100)]
    record_size: usize,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: Acks,
    /// batch.size in bytes.
    #[arg(long = "batch-size", default_value_t = 16_384)]
    batch_size: usize,
    /// linger.ms.
    #[arg(long = "linger-ms", default_value_t = 5)]
    linger_ms: u64,
    /// Batches in flight per partition (1 keeps order through retries).
    #[arg(long = "in-flight", default_value_t = 1)]
    in_flight: usize,
    /// Target send rate in records/s (like kafka-producer-perf-test); unlimited when absent.
    #[arg(long)]
    throughput: Option<u64>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct ConsumeBenchArgs {
    /// Topic.
    #[arg(long)]
    topic: String,
    /// Records to consume.
    #[arg(long = "num-records")]
    num_records: u64,
    /// Give up after this long without a record.
    #[arg(long = "timeout-ms", default_value_t = 10_000)]
    timeout_ms: u64,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct LoopbackArgs {
    /// Bytes to push through one loopback connection.
    #[arg(long, default_value_t = 4 << 30)]
    bytes: u64,
}

/// Runs a `weir bench` subcommand.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = TokioRuntime::new(u64::from(std::process::id()));
    match args.command {
        BenchCommand::Produce(args) => produce(runtime, args).await,
        BenchCommand::Consume(args) => consume(runtime, args).await,
        BenchCommand::Loopback(args) => loopback(runtime, args).await,
    }
}

async fn produce(runtime: TokioRuntime, args: ProduceBenchArgs) -> anyhow::Result<()> {
    let config = ProducerConfig {
        client: args.bootstrap.client_config()?,
        acks: args.acks,
        batch_bytes_max: args.batch_size,
        linger: Duration::from_millis(args.linger_ms),
        in_flight_batches_per_partition_max: args.in_flight,
        ..ProducerConfig::default()
    };
    let producer = Producer::connect(runtime.clone(), config)
        .await
        .with_context(|| format!("cannot reach {}", args.bootstrap.bootstrap_server))?;
    let payload = Bytes::from(
        (0..args.record_size)
            .map(|i| b'A' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let (sends_tx, sends_rx) =
        mpsc::channel(PENDING_SENDS_MAX.min(args.num_records.max(1) as usize));
    let (report_tx, report_rx) = oneshot::channel();
    let record_bytes = args.record_size;
    runtime.spawn(record_acks(
        runtime.clone(),
        sends_rx,
        record_bytes,
        report_tx,
    ));
    let start = runtime.now();
    for index in 0..args.num_records {
        if let Some(rate) = args.throughput.filter(|rate| *rate > 0) {
            // Pace against the schedule, not the previous send, so short stalls catch up.
            let due = start + Duration::from_secs_f64(index as f64 / rate as f64);
            if runtime.now() < due {
                runtime.sleep_until(due).await;
            }
        }
        producer.ready().await;
        let sent_at = runtime.now();
        let delivery = producer.send(&args.topic, None, None, Some(payload.clone()), Vec::new());
        if sends_tx.send((sent_at, delivery)).await.is_err() {
            bail!("latency recorder stopped");
        }
    }
    producer.flush().await;
    drop(sends_tx);
    let report = report_rx.await.context("latency recorder stopped")?;
    let elapsed = report
        .last_ack_at
        .saturating_sub(start)
        .max(Duration::from_micros(1));
    let seconds = elapsed.as_secs_f64();
    let acked = report.latencies_us.len() as f64;
    let mut latencies = report.latencies_us;
    latencies.sort_unstable();
    println!(
        "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, \
         {:.2} ms max latency, {} ms 50th, {} ms 99th, {} ms 99.9th.",
        args.num_records,
        acked / seconds,
        acked * record_bytes as f64 / MIB / seconds,
        mean_ms(&latencies),
        latencies.last().map_or(0.0, |&max| f64::from(max) / 1000.0),
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.99),
        percentile_ms(&latencies, 0.999),
    );
    if report.failed > 0 {
        bail!(
            "{} records failed (first: {})",
            report.failed,
            report.first_error
        );
    }
    Ok(())
}

struct AckReport {
    latencies_us: Vec<u32>,
    failed: u64,
    first_error: String,
    last_ack_at: Duration,
}

/// Awaits acknowledgements in send order, records latencies, prints progress each second.
async fn record_acks(
    runtime: TokioRuntime,
    mut sends: mpsc::Receiver<(Duration, DeliveryFuture)>,
    record_bytes: usize,
    report: oneshot::Sender<AckReport>,
) {
    let mut latencies_us = Vec::new();
    let (mut failed, mut first_error) = (0u64, String::new());
    let mut window = Window::new(runtime.now());
    let mut last_ack_at = runtime.now();
    while let Some((sent_at, delivery)) = sends.recv().await {
        let result = delivery.await;
        let now = runtime.now();
        last_ack_at = now;
        match result {
            Ok(_) => {
                let latency_us =
                    u32::try_from(now.saturating_sub(sent_at).as_micros()).unwrap_or(u32::MAX);
                latencies_us.push(latency_us);
                window.add(latency_us, record_bytes);
            }
            Err(error) => {
                if failed == 0 {
                    first_error = error.to_string();
                }
                failed += 1;
            }
        }
        window.maybe_report(now, "records sent");
    }
    drop(report.send(AckReport {
        latencies_us,
        failed,
        first_error,
        last_ack_at,
    }));
}

async fn consume(runtime: TokioRuntime, args: ConsumeBenchArgs) -> anyhow::Result<()> {
    let config = ConsumerConfig {
        client: args.bootstrap.client_config()?,
        auto_offset_reset: AutoOffsetReset::Earliest,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::connect(runtime.clone(), config)
        .await
        .with_context(|| format!("cannot reach {}", args.bootstrap.bootstrap_server))?;
    let partitions = consumer.partitions_for(&args.topic).await?;
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
            .seek(&args.topic, partition, Offset::Earliest)
            .await?;
    }
    let idle_max = Duration::from_millis(args.timeout_ms);
    let start = runtime.now();
    let mut last_record_at = start;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut poll_latencies_us = Vec::new();
    let mut window = Window::new(start);
    while records < args.num_records {
        let poll_start = runtime.now();
        let polled = consumer.poll(Duration::from_millis(500)).await?;
        let now = runtime.now();
        if polled.is_empty() {
            if now.saturating_sub(last_record_at) >= idle_max {
                eprintln!("no records for {} ms; stopping early", args.timeout_ms);
                break;
            }
            continue;
        }
        last_record_at = now;
        let poll_us = u32::try_from(now.saturating_sub(poll_start).as_micros()).unwrap_or(u32::MAX);
        poll_latencies_us.push(poll_us);
        for record in &polled {
            let size = record.value.as_ref().map_or(0, |v| v.len())
                + record.key.as_ref().map_or(0, |k| k.len());
            records += 1;
            bytes += size as u64;
            window.add(poll_us, size);
        }
        window.maybe_report(now, "records consumed");
    }
    let seconds = last_record_at.saturating_sub(start).as_secs_f64().max(1e-6);
    poll_latencies_us.sort_unstable();
    println!(
        "{records} records consumed, {:.1} records/sec ({:.2} MB/sec), {:.2} MB total, \
         poll latency {} ms 50th, {} ms 99th, {} ms 99.9th.",
        records as f64 / seconds,
        bytes as f64 / MIB / seconds,
        bytes as f64 / MIB,
        percentile_ms(&poll_latencies_us, 0.50),
        percentile_ms(&poll_latencies_us, 0.99),
        percentile_ms(&poll_latencies_us, 0.999),
    );
    if records < args.num_records {
        bail!("consumed {records} of {} records", args.num_records);
    }
    Ok(())
}

async fn loopback(runtime: TokioRuntime, args: LoopbackArgs) -> anyhow::Result<()> {
    let mut listener = runtime
        .bind("127.0.0.1:0")
        .await
        .context("binding loopback listener")?;
    let address = listener.local_addr()?;
    let (received_tx, received_rx) = oneshot::channel();
    let clock = runtime.clone();
    runtime.spawn(async move {
        let result = async {
            let (mut stream, _) = listener.accept().await?;
            let mut buffer = vec![0u8; LOOPBACK_CHUNK_BYTES];
            let mut total = 0u64;
            loop {
                let read = stream.read(&mut buffer).await?;
                if read == 0 {
                    return Ok::<_, std::io::Error>((total, clock.now()));
                }
                total += read as u64;
            }
        }
        .await;
        drop(received_tx.send(result));
    });
    let mut stream = runtime
        .connect(&address)
        .await
        .context("connecting over loopback")?;
    let chunk = vec![0x5au8; LOOPBACK_CHUNK_BYTES];
    let start = runtime.now();
    let mut remaining = args.bytes;
    while remaining > 0 {
        let size = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        stream.write_all(&chunk[..size]).await?;
        remaining -= size as u64;
    }
    stream.shutdown().await?;
    let (received, done_at) = received_rx.await.context("loopback reader stopped")??;
    let seconds = done_at.saturating_sub(start).as_secs_f64().max(1e-9);
    println!(
        "loopback: {received} bytes in {seconds:.3} s = {:.2} GB/s ({:.1} MB/sec)",
        received as f64 / 1e9 / seconds,
        received as f64 / MIB / seconds,
    );
    Ok(())
}

/// Per-second progress, printed to stderr like Kafka's perf tools.
struct Window {
    started_at: Duration,
    count: u64,
    bytes: u64,
    latency_sum_us: u64,
    latency_max_us: u32,
}

impl Window {
    fn new(now: Duration) -> Window {
        Window {
            started_at: now,
            count: 0,
            bytes: 0,
            latency_sum_us: 0,
            latency_max_us: 0,
        }
    }

    fn add(&mut self, latency_us: u32, bytes: usize) {
        self.count += 1;
        self.bytes += bytes as u64;
        self.latency_sum_us += u64::from(latency_us);
        self.latency_max_us = self.latency_max_us.max(latency_us);
    }

    fn maybe_report(&mut self, now: Duration, what: &str) {
        let elapsed = now.saturating_sub(self.started_at);
        if elapsed < Duration::from_secs(1) {
            return;
        }
        let seconds = elapsed.as_secs_f64();
        let count = self.count.max(1) as f64;
        eprintln!(
            "{} {what}, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, \
             {:.1} ms max latency.",
            self.count,
            self.count as f64 / seconds,
            self.bytes as f64 / MIB / seconds,
            self.latency_sum_us as f64 / count / 1000.0,
            f64::from(self.latency_max_us) / 1000.0,
        );
        *self = Window::new(now);
    }
}

fn percentile_ms(sorted_us: &[u32], quantile: f64) -> String {
    if sorted_us.is_empty() {
        return "-".to_owned();
    }
    let rank = ((sorted_us.len() as f64 * quantile).ceil() as usize).clamp(1, sorted_us.len());
    format!("{:.2}", f64::from(sorted_us[rank - 1]) / 1000.0)
}

fn mean_ms(samples_us: &[u32]) -> f64 {
    if samples_us.is_empty() {
        return 0.0;
    }
    samples_us.iter().map(|&s| f64::from(s)).sum::<f64>() / samples_us.len() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    // Goal: percentiles use the nearest-rank method on the sorted samples. Method: 1..=1000 µs.
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile_ms(&samples, 0.50), "0.50");
        assert_eq!(percentile_ms(&samples, 0.99), "0.99");
        assert_eq!(percentile_ms(&samples, 0.999), "1.00");
        assert_eq!(percentile_ms(&[], 0.5), "-");
        assert!((mean_ms(&samples) - 0.5005).abs() < 1e-9);
    }
}
