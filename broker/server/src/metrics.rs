//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of the node's offsets, groups
//! and lag, with kafka_exporter's series names (and the JMX exporter's `messagesin_total`),
//! so existing dashboards and alerts work unchanged (see docs/operations.md "Metrics").
//! What those exporters have no name for is `weir_`-prefixed: partition sizes on this
//! broker and the log cleaner's dirty ratio and byte totals.
//!
//! The same address serves `GET /healthz` (200 while the node loop answers) and
//! `GET /readyz` (200 only when `Node::readiness` says the broker is registered,
//! unfenced, caught up on metadata and back in its ISRs; 503 with the reason otherwise),
//! for deploy tooling and Kubernetes probes (docs/operations.md "Health checks").
//!
//! The HTTP side is a deliberately tiny HTTP/1.1 handler over the runtime's listener: one
//! request per connection, `Connection: close`, GET only. Scrapers (Prometheus, curl,
//! VictoriaMetrics agents) need nothing more, and it costs no dependency.
//!
//! Invariants:
//! - The numbers come from one [`MetricsSnapshot`] per shard, each taken by its node loop
//!   between two inputs ([`NodeInput::Metrics`]), so a shard's numbers never mix two points
//!   of its history; each partition is reported by the shard that holds it
//!   ([`crate::shards::merge_metrics`]).
//! - Every connection is bounded: the request head may be at most [`REQUEST_HEAD_BYTES_MAX`]
//!   and must arrive within [`REQUEST_TIMEOUT`]; otherwise the connection is closed.
//! - With `weir.metrics.ssl.enable` the connection is TLS first; the handshake counts
//!   against the same [`REQUEST_TIMEOUT`].
//! - A scrape never blocks the broker: the node loop only clones numbers; rendering and
//!   writing happen on the connection's own task.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use weir_core::node::metrics::{MetricsSnapshot, RemotePartitionMetrics};
use weir_runtime::{Listener, Runtime};

use crate::limits::{ClientLimits, LimitUse};
use crate::messages::NodeInput;
use crate::tls::TlsAcceptor;

/// Bound on the request line plus headers; scrapers send a few hundred bytes.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Bound on the time a client may take to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Accepts scrapes until the node loop stops.
pub async fn serve<R: Runtime>(
    runtime: R,
    mut listener: R::Listener,
    node: crate::shards::NodeHandle,
    tls: Option<TlsAcceptor>,
    limits: Arc<ClientLimits>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::warn!("metrics accept failed: {error}");
                let wake = runtime.now() + ACCEPT_RETRY_DELAY;
                runtime.sleep_until(wake).await;
                continue;
            }
        };
        if node.is_closed() {
            return;
        }
        let deadline = runtime.now() + REQUEST_TIMEOUT;
        let timer = runtime.sleep_until(deadline);
        let node = node.clone();
        let limits = Arc::clone(&limits);
        let (tls, task_runtime) = (tls.clone(), runtime.clone());
        runtime.spawn(async move {
            let served = async {
                match &tls {
                    None => handle(stream, node, &limits).await,
                    Some(acceptor) => {
                        let accepted = acceptor.accept(&task_runtime, stream).await;
                        handle(accepted.map_err(std::io::Error::other)?, node, &limits).await
                    }
                }
            };
            tokio::select! {
                biased;
                result = served => {
                    if let Err(error) = result {
                        tracing::debug!("metrics connection: {error}");
                    }
                }
                () = timer => tracing::debug!("metrics connection timed out"),
            }
        });
    }
}

/// Serves one request on `stream`, then closes it.
async fn handle<S>(
    mut stream: S,
    node: crate::shards::NodeHandle,
    limits: &ClientLimits,
) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(head) = read_head(&mut stream).await? else {
        return respond(&mut stream, "400 Bad Request", "request head too large\n").await;
    };
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, "405 Method Not Allowed", "GET only\n").await;
    }
    if path == "/healthz" || path == "/readyz" {
        let (status, body) = health(&node, path == "/readyz").await;
        let body = if method == "HEAD" { "" } else { body.as_str() };
        return respond(&mut stream, status, body).await;
    }
    if path != "/metrics" {
        let body = "weir: see /metrics, /healthz, /readyz\n";
        return respond(&mut stream, "404 Not Found", body).await;
    }
    // Every shard's snapshot, merged: each partition from the shard that holds it.
    let Some(snapshot) = node.metrics().await else {
        return respond(&mut stream, "503 Service Unavailable", "node stopped\n").await;
    };
    let mut body = render(&snapshot);
    render_limits(&mut body, limits.usage());
    let body = if method == "HEAD" { "" } else { body.as_str() };
    respond(&mut stream, "200 OK", body).await
}

/// `/healthz` (`ready` false): 200 `ok` when the node loop answers, whatever the node's
/// state; `/readyz`: 200 `ready` only when `Node::readiness` says so, else 503 with its
/// reason. 503 `node stopped` for both when the node loop is gone (a poisoned node, a
/// finished shutdown).
async fn health(node: &crate::shards::NodeHandle, ready: bool) -> (&'static str, String) {
    const STOPPED: (&str, &str) = ("503 Service Unavailable", "node stopped\n");
    let (reply, readiness) = oneshot::channel();
    if node.send(NodeInput::Health { reply }).await.is_err() {
        return (STOPPED.0, STOPPED.1.to_owned());
    }
    let Ok(readiness) = readiness.await else {
        return (STOPPED.0, STOPPED.1.to_owned());
    };
    match (ready, readiness) {
        (false, _) => ("200 OK", "ok\n".to_owned()),
        (true, weir_core::Readiness::Ready) => ("200 OK", "ready\n".to_owned()),
        (true, weir_core::Readiness::NotReady(reason)) => {
            ("503 Service Unavailable", format!("not ready: {reason}\n"))
        }
    }
}

/// Reads until the blank line ending the head; `None` when it exceeds the bound.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() > REQUEST_HEAD_BYTES_MAX {
            return Ok(None);
        }
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

async fn respond<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await?;
    stream.shutdown().await
}

/// Renders a snapshot in the Prometheus text format, kafka_exporter's series names.
pub fn render(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::with_capacity(256 + 160 * snapshot.partitions.len());
    family(
        &mut out,
        "kafka_brokers",
        "Number of Brokers in the Kafka Cluster.",
    );
    sample(&mut out, "kafka_brokers", &[], snapshot.broker_count);

    let mut topics: Vec<(&str, usize)> = Vec::new();
    for partition in &snapshot.partitions {
        match topics.last_mut() {
            Some((topic, count)) if *topic == partition.topic => *count += 1,
            _ => topics.push((&partition.topic, 1)),
        }
    }
    family(
        &mut out,
        "kafka_topic_partitions",
        "Number of partitions for this Topic",
    );
    for (topic, count) in &topics {
        sample(
            &mut out,
            "kafka_topic_partitions",
            &[("topic", topic)],
            count,
        );
    }
    let offsets = [
        (
            "kafka_topic_partition_current_offset",
            "Current Offset of a Broker at Topic/Partition",
        ),
        (
            "kafka_topic_partition_oldest_offset",
            "Oldest Offset of a Broker at Topic/Partition",
        ),
    ];
    for (index, (name, help)) in offsets.into_iter().enumerate() {
        family(&mut out, name, help);
        for partition in &snapshot.partitions {
            let value = if index == 0 {
                partition.high_watermark
            } else {
                partition.log_start_offset
            };
            let label = partition.partition.to_string();
            let labels = [("topic", partition.topic.as_str()), ("partition", &label)];
            sample(&mut out, name, &labels, value);
        }
    }
    render_messages_in(&mut out, snapshot);
    render_groups(&mut out, snapshot);
    render_log_sizes(&mut out, snapshot);
    render_authorizer(&mut out, snapshot);
    render_remote(&mut out, snapshot);
    let name = "weir_state_machine_busy_seconds_total";
    family(
        &mut out,
        name,
        "Seconds the node loop spent handling events (the partitions' state machine is one \
         task: its rate against 1.0 is how busy that one core is)",
    );
    sample(
        &mut out,
        name,
        &[],
        snapshot.state_machine_busy.as_secs_f64(),
    );
    if !snapshot.shard_busy.is_empty() {
        let name = "weir_shard_state_machine_busy_seconds_total";
        family(
            &mut out,
            name,
            "A broker of several shards (num.shards): seconds each shard's node loop spent \
             handling events (the sum is weir_state_machine_busy_seconds_total)",
        );
        for (shard, busy) in snapshot.shard_busy.iter().enumerate() {
            let shard = shard.to_string();
            sample(&mut out, name, &[("shard", &shard)], busy.as_secs_f64());
        }
    }
    out
}

/// Tiered storage: `weir_remote_log_size_bytes` (tiered partitions),
/// `weir_remote_upload_lag_bytes` (tiered partitions this broker leads: closed, stable
/// bytes not uploaded yet) and the upload counters.
fn render_remote(out: &mut String, snapshot: &MetricsSnapshot) {
    type Gauge = fn(&RemotePartitionMetrics) -> Option<u64>;
    let gauges: [(&str, &str, Gauge); 2] = [
        (
            "weir_remote_log_size_bytes",
            "Bytes of the partition's segments in the remote store.",
            |remote| Some(remote.size_bytes),
        ),
        (
            "weir_remote_upload_lag_bytes",
            "Bytes of closed segments the leader has not uploaded yet.",
            |remote| remote.upload_lag_bytes,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, help);
        for partition in &snapshot.partitions {
            let Some(value) = partition.remote.as_ref().and_then(value) else {
                continue;
            };
            let label = partition.partition.to_string();
            let labels = [("topic", partition.topic.as_str()), ("partition", &label)];
            sample(out, name, &labels, value);
        }
    }
    let counters = [
        (
            "weir_remote_upload_bytes_total",
            "Bytes of segment objects uploaded since the broker started.",
            snapshot.remote_bytes_uploaded,
        ),
        (
            "weir_remote_uploads_total",
            "Segment uploads completed since the broker started.",
            snapshot.remote_uploads,
        ),
        (
            "weir_remote_upload_failures_total",
            "Segment uploads that failed (and were retried) since the broker started.",
            snapshot.remote_upload_failures,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        sample(out, name, &[], value);
    }
    let name = "weir_log_cleaner_busy_seconds_total";
    let _ = writeln!(
        out,
        "# HELP {name} Seconds the log cleaner's jobs ran (off the node loop) since the \
         broker started: bytes read over it is the cleaner's throughput.\n# TYPE {name} counter"
    );
    sample(out, name, &[], snapshot.cleaner_busy.as_secs_f64());
}

/// The authorizer's decisions since the process started:
/// `weir_authorizer_decisions_total{decision="allowed"|"denied"}`.
fn render_authorizer(out: &mut String, snapshot: &MetricsSnapshot) {
    let name = "weir_authorizer_decisions_total";
    let _ = writeln!(
        out,
        "# HELP {name} Authorization decisions (ACL checks) since the broker started.\n\
         # TYPE {name} counter"
    );
    let counts = snapshot.authorizer;
    sample(out, name, &[("decision", "allowed")], counts.allowed);
    sample(out, name, &[("decision", "denied")], counts.denied);
}

/// Partition sizes on this broker and the log cleaner's state: `weir_partition_size_bytes`
/// (every partition), `weir_log_cleaner_dirty_ratio` (compacted topics only), and the
/// cleaner's byte counters (since the process started).
fn render_log_sizes(out: &mut String, snapshot: &MetricsSnapshot) {
    let name = "weir_partition_size_bytes";
    family(
        out,
        name,
        "Bytes of the partition's log segments on this broker.",
    );
    for partition in &snapshot.partitions {
        let label = partition.partition.to_string();
        let labels = [("topic", partition.topic.as_str()), ("partition", &label)];
        sample(out, name, &labels, partition.size_bytes);
    }
    let name = "weir_log_cleaner_dirty_ratio";
    family(
        out,
        name,
        "Share of the compacted log's cleanable bytes not cleaned yet.",
    );
    for partition in &snapshot.partitions {
        let Some(ratio) = partition.cleaner_dirty_ratio else {
            continue;
        };
        let label = partition.partition.to_string();
        let labels = [("topic", partition.topic.as_str()), ("partition", &label)];
        sample(out, name, &labels, ratio);
    }
    let counters = [
        (
            "weir_log_cleaner_bytes_read_total",
            "Bytes the log cleaner read since the broker started.",
            snapshot.cleaner_bytes_read,
        ),
        (
            "weir_log_cleaner_bytes_cleaned_total",
            "Bytes the log cleaner removed from logs since the broker started.",
            snapshot.cleaner_bytes_cleaned,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        sample(out, name, &[], value);
    }
}

/// Records appended per topic. Every appended record takes one offset, so the sum of the
/// partitions' high watermarks counts them since the topic was created (control records of
/// transactions included); it survives restarts, which a counter in memory would not.
fn render_messages_in(out: &mut String, snapshot: &MetricsSnapshot) {
    let name = "kafka_server_brokertopicmetrics_messagesin_total";
    let _ = writeln!(
        out,
        "# HELP {name} Records appended to the topic (sum of high watermarks).\n\
         # TYPE {name} counter"
    );
    let mut sums: Vec<(&str, i64)> = Vec::new();
    for partition in &snapshot.partitions {
        match sums.last_mut() {
            Some((topic, sum)) if *topic == partition.topic => *sum += partition.high_watermark,
            _ => sums.push((&partition.topic, partition.high_watermark)),
        }
    }
    for (topic, sum) in sums {
        sample(out, name, &[("topic", topic)], sum);
    }
}

fn render_groups(out: &mut String, snapshot: &MetricsSnapshot) {
    let name = "kafka_consumergroup_members";
    family(out, name, "Amount of members in a consumer group");
    for group in &snapshot.groups {
        sample(
            out,
            name,
            &[("consumergroup", &group.group_id)],
            group.member_count,
        );
    }
    let name = "kafka_consumergroup_current_offset";
    family(
        out,
        name,
        "Current Offset of a ConsumerGroup at Topic/Partition",
    );
    for group in &snapshot.groups {
        for p in &group.partitions {
            let partition = p.partition.to_string();
            let labels = group_labels(&group.group_id, &p.topic, &partition);
            sample(out, name, &labels, p.committed_offset);
        }
    }
    let name = "kafka_consumergroup_lag";
    family(
        out,
        name,
        "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
    );
    for group in &snapshot.groups {
        for p in &group.partitions {
            let Some(lag) = p.lag else { continue };
            let partition = p.partition.to_string();
            let labels = group_labels(&group.group_id, &p.topic, &partition);
            sample(out, name, &labels, lag);
        }
    }
    let name = "kafka_consumergroup_lag_sum";
    family(
        out,
        name,
        "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
    );
    for group in &snapshot.groups {
        // Committed offsets come in (topic, partition) order, so topics are contiguous.
        let mut sums: Vec<(&str, i64)> = Vec::new();
        for p in &group.partitions {
            let lag = p.lag.unwrap_or(0);
            match sums.last_mut() {
                Some((topic, sum)) if *topic == p.topic => *sum += lag,
                _ => sums.push((&p.topic, lag)),
            }
        }
        for (topic, sum) in sums {
            let labels = [("consumergroup", group.group_id.as_str()), ("topic", topic)];
            sample(out, name, &labels, sum);
        }
    }
}

fn group_labels<'a>(group: &'a str, topic: &'a str, partition: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("consumergroup", group),
        ("topic", topic),
        ("partition", partition),
    ]
}

/// The client budgets (`max.connections`, `queued.max.requests`,
/// `queued.max.request.bytes`): each bound and its current use.
pub fn render_limits(out: &mut String, usage: LimitUse) {
    let settings = usage.settings;
    let gauges = [
        (
            "weir_client_connections",
            "Open Kafka client connections.",
            usage.connections,
        ),
        (
            "weir_client_connections_max",
            "max.connections: connections over it are closed at accept.",
            settings.connections_max,
        ),
        (
            "weir_queued_requests",
            "Requests read and not yet answered, all connections.",
            usage.queued_requests,
        ),
        (
            "weir_queued_requests_max",
            "queued.max.requests: readers pause at it.",
            settings.queued_requests_max,
        ),
        (
            "weir_queued_request_bytes",
            "Bytes of requests read and not yet answered (KiB-rounded per request).",
            usage.queued_request_bytes,
        ),
        (
            "weir_queued_request_bytes_max",
            "queued.max.request.bytes: readers pause at it.",
            settings.queued_request_bytes_max,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, help);
        sample(out, name, &[], value);
    }
}

fn family(out: &mut String, name: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (key, raw)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            escape_label(out, raw);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape backslash, double quote and newline (the exposition format's rule).
fn escape_label(out: &mut String, raw: &str) {
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    // Goal: the exposition uses kafka_exporter's names and labels, sums lag per topic, skips
    // lag for vanished partitions and escapes label values; Weir's own series carry sizes,
    // dirty ratios (compacted partitions only) and the cleaner's counters. Method: render a
    // hand-built snapshot and look for exact lines.
    use weir_core::node::metrics::{GroupMetrics, GroupPartitionLag, PartitionOffsets};

    use super::*;

    #[test]
    fn renders_kafka_exporter_series() {
        let partition = |p, start, hw| PartitionOffsets {
            topic: "orders".into(),
            partition: p,
            log_start_offset: start,
            high_watermark: hw,
            size_bytes: 1000 + u64::try_from(p).expect("small"),
            cleaner_dirty_ratio: (p == 1).then_some(0.25),
            remote: (p == 0).then_some(RemotePartitionMetrics {
                size_bytes: 777,
                log_start_offset: 0,
                upload_lag_bytes: Some(12),
            }),
        };
        let lag = |topic: &str, p, committed, hw: Option<i64>| GroupPartitionLag {
            topic: topic.into(),
            partition: p,
            committed_offset: committed,
            high_watermark: hw,
            lag: hw.map(|hw| hw - committed),
        };
        let snapshot = MetricsSnapshot {
            node_id: 1,
            broker_count: 1,
            partitions: vec![partition(0, 0, 10), partition(1, 2, 7)],
            groups: vec![GroupMetrics {
                group_id: "g\"1".into(),
                state: "Empty".into(),
                member_count: 0,
                partitions: vec![
                    lag("gone", 0, 5, None),
                    lag("orders", 0, 4, Some(10)),
                    lag("orders", 1, 7, Some(7)),
                ],
            }],
            cleaner_bytes_read: 4096,
            cleaner_bytes_cleaned: 512,
            remote_bytes_uploaded: 9000,
            remote_uploads: 3,
            remote_upload_failures: 1,
            authorizer: weir_core::node::acl::AuthorizerCounts {
                allowed: 5,
                denied: 2,
            },
            state_machine_busy: Duration::from_millis(1500),
            shard_busy: vec![Duration::from_millis(1000), Duration::from_millis(500)],
            cleaner_busy: Duration::from_millis(250),
        };
        let text = render(&snapshot);
        for line in [
            "kafka_brokers 1",
            "kafka_topic_partitions{topic=\"orders\"} 2",
            "kafka_server_brokertopicmetrics_messagesin_total{topic=\"orders\"} 17",
            "kafka_topic_partition_current_offset{topic=\"orders\",partition=\"0\"} 10",
            "kafka_topic_partition_oldest_offset{topic=\"orders\",partition=\"1\"} 2",
            "kafka_consumergroup_members{consumergroup=\"g\\\"1\"} 0",
            "kafka_consumergroup_current_offset{consumergroup=\"g\\\"1\",topic=\"orders\",\
             partition=\"0\"} 4",
            "kafka_consumergroup_lag{consumergroup=\"g\\\"1\",topic=\"orders\",partition=\"0\"} 6",
            "kafka_consumergroup_lag_sum{consumergroup=\"g\\\"1\",topic=\"orders\"} 6",
            "kafka_consumergroup_lag_sum{consumergroup=\"g\\\"1\",topic=\"gone\"} 0",
            "weir_partition_size_bytes{topic=\"orders\",partition=\"0\"} 1000",
            "weir_partition_size_bytes{topic=\"orders\",partition=\"1\"} 1001",
            "weir_log_cleaner_dirty_ratio{topic=\"orders\",partition=\"1\"} 0.25",
            "weir_log_cleaner_bytes_read_total 4096",
            "weir_log_cleaner_bytes_cleaned_total 512",
            "weir_log_cleaner_busy_seconds_total 0.25",
            "weir_state_machine_busy_seconds_total 1.5",
            "weir_shard_state_machine_busy_seconds_total{shard=\"0\"} 1",
            "weir_shard_state_machine_busy_seconds_total{shard=\"1\"} 0.5",
            "weir_remote_log_size_bytes{topic=\"orders\",partition=\"0\"} 777",
            "weir_remote_upload_lag_bytes{topic=\"orders\",partition=\"0\"} 12",
            "weir_remote_upload_bytes_total 9000",
            "weir_remote_upload_failures_total 1",
            "weir_authorizer_decisions_total{decision=\"allowed\"} 5",
            "weir_authorizer_decisions_total{decision=\"denied\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("kafka_consumergroup_lag{consumergroup=\"g\\\"1\",topic=\"gone\""));
        assert!(text.contains("# TYPE kafka_consumergroup_lag gauge"));
        assert!(text.contains("# TYPE kafka_server_brokertopicmetrics_messagesin_total counter"));
        // Only compacted partitions have a dirty ratio.
        assert!(!text.contains("weir_log_cleaner_dirty_ratio{topic=\"orders\",partition=\"0\"}"));
        assert!(text.contains("# TYPE weir_log_cleaner_bytes_cleaned_total counter"));
    }
}
