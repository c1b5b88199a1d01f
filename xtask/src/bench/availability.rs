//! The availability workloads of `cargo xtask bench`: how long acks=all producing stops when
//! a partition leader is SIGKILLed (`--only failover`), and how long a new consumer group
//! takes from subscribe() to its first assignment (`--only group-join`). Both use the
//! librdkafka load generator with librdkafka's default client settings.
//!
//! The failover cluster keeps its node logs in target/bench-failover/ (nodeN.log, one per
//! node across all runs, and TOPIC.client.log, librdkafka's own complaints) so a slow
//! failover can be traced afterwards; every run also prints a timeline taken from them.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use super::{free_port, render_sections, start_broker};

/// Heading of the failover part of docs/benchmarks.md (`--only failover` replaces it).
pub(super) const FAILOVER_HEADING: &str =
    "## Failover: the partition leader SIGKILLed under a paced acks=all producer";
/// Heading of the consumer-group part of docs/benchmarks.md.
pub(super) const GROUP_JOIN_HEADING: &str = "## Consumer-group first join";

/// The producer's pace and how long it produces: steady after ~2 s, the leader is killed
/// 1-2 s later, restarted 10 s after that, and the producer goes on ~6 s more.
const FAILOVER_RATE: &str = "1000";
const FAILOVER_SECONDS: &str = "20";
/// The kill comes this long after `steady`, plus (run - 1) / runs of a second: librdkafka
/// re-queries the leader of a partition whose broker is down on a 1 s timer that starts
/// with the client, and `steady` comes a whole number of seconds after the client starts,
/// so a fixed delay would always hit that timer in the same phase; a crash hits it anywhere.
const KILL_AFTER_STEADY: Duration = Duration::from_secs(1);
const DOWN_FOR: Duration = Duration::from_secs(10);
/// The target for a leader that is not the active controller.
const FAILOVER_TARGET_MS: f64 = 2_000.0;
/// Weir's default `group.initial.rebalance.delay.ms` (broker/core/src/config.rs; Kafka's
/// is the same), and the target for the first join: within the delay plus this.
const GROUP_INITIAL_REBALANCE_DELAY_MS: f64 = 3_000.0;
const GROUP_JOIN_SLACK_MS: f64 = 500.0;
/// Cluster readiness and topic placement give up after this.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Three `weir serve` processes on 127.0.0.1 (node ids 1..=3, all voters), started the way
/// `cargo xtask cluster` starts them; each logs to `base/nodeN.log` (appended across
/// restarts) and keeps its data in `base/nN`. Dropping it SIGKILLs every node.
pub(super) struct BenchCluster {
    weir: PathBuf,
    base: PathBuf,
    kafka: Vec<u16>,
    peer: Vec<u16>,
    config: Option<PathBuf>,
    nodes: Vec<Option<Child>>,
}

impl BenchCluster {
    /// Start three nodes under `base` (created; emptied first) with `config` as their
    /// weir.toml (none when empty).
    pub(super) fn start(weir: &Path, base: &Path, config: &str) -> Result<Self> {
        let _ = fs::remove_dir_all(base);
        fs::create_dir_all(base).with_context(|| format!("creating {}", base.display()))?;
        let config = if config.is_empty() {
            None
        } else {
            let path = base.join("weir.toml");
            fs::write(&path, config)?;
            Some(path)
        };
        let mut cluster = BenchCluster {
            weir: weir.to_path_buf(),
            base: base.to_path_buf(),
            kafka: (0..3).map(|_| free_port()).collect::<Result<_>>()?,
            peer: (0..3).map(|_| free_port()).collect::<Result<_>>()?,
            config,
            nodes: (0..3).map(|_| None).collect(),
        };
        for index in 0..3 {
            cluster.spawn(index)?;
        }
        Ok(cluster)
    }

    /// (Re)start node `index + 1` on its ports and data directory.
    pub(super) fn spawn(&mut self, index: usize) -> Result<()> {
        let voters = (0..self.peer.len())
            .map(|i| format!("{}@127.0.0.1:{}", i + 1, self.peer[i]))
            .collect::<Vec<_>>()
            .join(",");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(index))
            .context("opening a node log")?;
        let mut command = Command::new(&self.weir);
        command
            .args(["serve", "--node-id", &(index + 1).to_string()])
            .args(["--listen", &self.kafka(index)])
            .arg("--data-dir")
            .arg(self.base.join(format!("n{}", index + 1)))
            .args([
                "--controller-listen",
                &format!("127.0.0.1:{}", self.peer[index]),
            ])
            .args(["--voters", &voters, "--gateway", "off"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        let child = command.spawn().context("starting a cluster node")?;
        self.nodes[index] = Some(child);
        Ok(())
    }

    /// SIGKILL node `index + 1` (std's `Child::kill` is SIGKILL on Unix) and reap it.
    pub(super) fn kill(&mut self, index: usize) -> Result<()> {
        if let Some(mut child) = self.nodes[index].take() {
            child.kill().context("killing a node")?;
            let _ = child.wait();
        }
        Ok(())
    }

    /// The process ids of the three nodes (all running).
    pub(super) fn pids(&self) -> Result<[u32; 3]> {
        let pid = |index: usize| -> Result<u32> {
            (self.nodes.get(index).and_then(Option::as_ref))
                .map(Child::id)
                .with_context(|| format!("node {} is not running", index + 1))
        };
        Ok([pid(0)?, pid(1)?, pid(2)?])
    }

    pub(super) fn kafka(&self, index: usize) -> String {
        format!("127.0.0.1:{}", self.kafka[index])
    }

    /// Every node's Kafka address, comma-separated (a client's bootstrap.servers).
    pub(super) fn bootstrap(&self) -> String {
        (0..self.kafka.len())
            .map(|i| self.kafka(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn log(&self, index: usize) -> PathBuf {
        self.base.join(format!("node{}.log", index + 1))
    }

    /// The Kafka address of some running node.
    fn live_kafka(&self) -> Result<String> {
        (0..self.nodes.len())
            .find(|i| self.nodes[*i].is_some())
            .map(|i| self.kafka(i))
            .context("no node is running")
    }

    /// Wait until every running node reports all three brokers live; the active controller.
    pub(super) fn wait_ready(&mut self) -> Result<i32> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            for (index, node) in self.nodes.iter_mut().enumerate() {
                if let Some(child) = node {
                    if let Some(status) = child.try_wait()? {
                        bail!("node {} exited ({status}); see its log", index + 1);
                    }
                }
            }
            let views: Vec<Option<(i32, usize)>> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].is_some())
                .map(|i| describe_cluster(&self.weir, &self.kafka(i)))
                .collect();
            if let Some(Some((controller, 3))) = views.first() {
                if views.iter().all(|v| *v == Some((*controller, 3))) {
                    return Ok(*controller);
                }
            }
            if Instant::now() > deadline {
                bail!("the cluster did not report 3 live brokers within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Create a 1-partition RF=3 topic with min.insync.replicas=2 (retried while the
    /// cluster settles) and wait until it has a leader and all three replicas in its ISR.
    pub(super) fn create_topic(&self, topic: &str, partitions: u32) -> Result<TopicState> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let (ok, _) = weir_output(
                &self.weir,
                &[
                    "topic",
                    "create",
                    topic,
                    "--partitions",
                    &partitions.to_string(),
                    "--replication-factor",
                    "3",
                    "--config",
                    "min.insync.replicas=2",
                    "--bootstrap-server",
                    &self.live_kafka()?,
                ],
            )?;
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("the cluster did not create {topic}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        loop {
            if let Some(state) = describe_topic(&self.weir, &self.live_kafka()?, topic) {
                if state.leaders.iter().all(|l| *l > 0) && state.full_isr {
                    return Ok(state);
                }
            }
            if Instant::now() > deadline {
                bail!("{topic} did not get leaders and a full ISR");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn delete_topic(&self, topic: &str) -> Result<()> {
        let kafka = self.live_kafka()?;
        weir_output(
            &self.weir,
            &["topic", "delete", topic, "--bootstrap-server", &kafka],
        )?;
        Ok(())
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            let _ = self.kill(index);
        }
    }
}

/// What `weir topic describe` says about a topic.
pub(super) struct TopicState {
    id: String,
    /// Per partition, its leader's node id (-1: none).
    leaders: Vec<i32>,
    /// Every partition's ISR holds all three replicas.
    full_isr: bool,
}

fn weir_output(weir: &Path, args: &[&str]) -> Result<(bool, String)> {
    let output = Command::new(weir)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .context("running weir")?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// The value of a `Key: value` field of weir's tab-separated describe output.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split('\t')
        .filter_map(|f| f.trim().strip_prefix(key)?.strip_prefix(": "))
        .next()
}

/// `weir cluster describe`: (active controller, live broker count).
fn describe_cluster(weir: &Path, kafka: &str) -> Option<(i32, usize)> {
    let (ok, text) = weir_output(weir, &["cluster", "describe", "--bootstrap", kafka]).ok()?;
    let header = text.lines().next().filter(|_| ok)?;
    let controller = field(header, "ControllerId")?.parse().ok()?;
    let brokers = field(header, "BrokerCount")?.parse().ok()?;
    Some((controller, brokers))
}

fn describe_topic(weir: &Path, kafka: &str, topic: &str) -> Option<TopicState> {
    let args = ["topic", "describe", topic, "--bootstrap-server", kafka];
    let (ok, text) = weir_output(weir, &args).ok()?;
    let mut lines = text.lines();
    let id = field(lines.next().filter(|_| ok)?, "TopicId")?.to_string();
    let mut leaders = Vec::new();
    let mut full_isr = true;
    for line in lines {
        leaders.push(field(line, "Leader")?.parse().ok()?);
        full_isr &= field(line, "Isr")?.split(',').count() == 3;
    }
    (!leaders.is_empty()).then_some(TopicState {
        id,
        leaders,
        full_isr,
    })
}

/// One failover measurement.
struct FailoverRun {
    leader_is_controller: bool,
    shown: String,
    output: String,
    max_gap_ms: f64,
    /// From the SIGKILL to the new leader's `leading partition` log line.
    new_leader_ms: Option<i64>,
    failed: u64,
    /// Every acknowledged record was read back.
    intact: bool,
}

/// Runs the failover measurement `repeat` times with a leader that is not the active
/// controller, then `repeat` times with one that is; returns the docs/benchmarks.md part.
pub(super) fn failover_part(
    weir: &Path,
    load: &Path,
    root: &Path,
    repeat: usize,
) -> Result<String> {
    let base = root.join("target/bench-failover");
    let mut cluster = BenchCluster::start(weir, &base, "")?;
    let mut runs = Vec::new();
    for leader_is_controller in [false, true] {
        for run in 1..=repeat {
            let phase = Duration::from_millis(1_000 * (run as u64 - 1) / repeat as u64);
            runs.push(failover_run(
                &mut cluster,
                load,
                &base,
                leader_is_controller,
                (run, KILL_AFTER_STEADY + phase),
            )?);
        }
    }
    drop(cluster);
    for node in 1..=3 {
        let _ = fs::remove_dir_all(base.join(format!("n{node}")));
    }
    let mut part = format!(
        "{FAILOVER_HEADING}\n\n\
         Made by `cargo xtask bench` (alone: `--only failover`). A 3-node cluster on this\n\
         machine (release `weir`, started like `cargo xtask cluster`), a topic of 1 partition,\n\
         RF=3, `min.insync.replicas=2`, a fresh topic per run. `rdkafka_load failover`\n\
         produces 100-byte records at {FAILOVER_RATE}/s with acks=all and librdkafka's default\n\
         settings (no idempotence, unlimited retries, `message.timeout.ms` 300 s). Once it\n\
         runs steadily, the partition leader is SIGKILLed (run k of n: {} + (k-1)/n s later)\n\
         and restarted {} s after that. Reported: the longest gap between consecutive\n\
         successful delivery reports, failed deliveries, and whether every acknowledged record\n\
         is in the partition when it is read back from offset 0 afterwards. The leader is first\n\
         a broker that is not the active controller (`weir cluster describe`; target: a gap\n\
         under {} s), then the active controller itself (the Raft quorum elects a new\n\
         controller first). Each run's timeline (ms after the SIGKILL) comes from the nodes'\n\
         logs (target/bench-failover/nodeN.log) and the producer's delivery reports.\n\n\
         The gap is the time to a new leader on the brokers' side plus librdkafka's wait for\n\
         its next leader query: when the leader's connection drops it asks once after\n\
         `topic.metadata.refresh.fast.interval.ms` (250 ms) and then, while Metadata still\n\
         names the dead broker, on a 1 s timer that runs from the client's start. So the kill\n\
         times are spread over that second: a fixed one would hit the timer in the same phase\n\
         every run.\n\n\
         | leader killed | longest gap between acks, each run | median | SIGKILL to new \
         leader (node logs) | failed deliveries | every acked record read back |\n\
         |---|---|---|---|---|---|\n",
        KILL_AFTER_STEADY.as_secs(),
        DOWN_FOR.as_secs(),
        FAILOVER_TARGET_MS / 1000.0,
    );
    for leader_is_controller in [false, true] {
        let case: Vec<&FailoverRun> = runs
            .iter()
            .filter(|r| r.leader_is_controller == leader_is_controller)
            .collect();
        let gaps: Vec<f64> = case.iter().map(|r| r.max_gap_ms).collect();
        let _ = writeln!(
            part,
            "| {} | {} | {:.0} ms | {} | {} | {} |",
            if leader_is_controller {
                "the active controller"
            } else {
                "not the controller"
            },
            join(gaps.iter().map(|g| format!("{g:.0} ms"))),
            median(&gaps),
            join(case.iter().map(|r| match r.new_leader_ms {
                Some(ms) => format!("{ms} ms"),
                None => "?".to_string(),
            })),
            join(case.iter().map(|r| r.failed.to_string())),
            join(
                case.iter()
                    .map(|r| if r.intact { "yes" } else { "NO" }.to_string())
            ),
        );
    }
    let mut sections = vec![(
        "cat /proc/loadavg  # after the failover runs".to_string(),
        fs::read_to_string("/proc/loadavg").unwrap_or_default(),
    )];
    sections.extend(runs.into_iter().map(|r| (r.shown, r.output)));
    render_sections(&mut part, &sections);
    Ok(part)
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A fresh topic whose leader is (or is not) the active controller: placement rotates with
/// the topic count, so one of three consecutive topics does; the misplaced ones are deleted
/// once it is found (deleting them at once would place the next one the same way).
fn place_topic(
    cluster: &mut BenchCluster,
    leader_is_controller: bool,
    run: usize,
) -> Result<(String, TopicState, i32)> {
    let case = if leader_is_controller { "ctl" } else { "peer" };
    let mut misplaced = Vec::new();
    let mut found = None;
    for attempt in 0..6 {
        cluster.wait_ready()?;
        let topic = format!("failover-{case}-{run}-{attempt}");
        let state = cluster.create_topic(&topic, 1)?;
        let controller = cluster.wait_ready()?;
        if (state.leaders[0] == controller) == leader_is_controller {
            found = Some((topic, state, controller));
            break;
        }
        misplaced.push(topic);
    }
    for topic in misplaced {
        cluster.delete_topic(&topic)?;
    }
    found.with_context(|| {
        format!(
            "no topic got a leader that is{} the controller",
            if leader_is_controller { "" } else { " not" }
        )
    })
}

fn failover_run(
    cluster: &mut BenchCluster,
    load: &Path,
    base: &Path,
    leader_is_controller: bool,
    (run, kill_after): (usize, Duration),
) -> Result<FailoverRun> {
    let (topic, state, controller) = place_topic(cluster, leader_is_controller, run)?;
    let leader = state.leaders[0];
    let victim = usize::try_from(leader - 1).context("leader id")?;
    let bootstrap = cluster.bootstrap();
    let args = [
        "failover",
        bootstrap.as_str(),
        topic.as_str(),
        FAILOVER_RATE,
        FAILOVER_SECONDS,
    ];
    let shown = format!(
        "rdkafka_load {}  # run {run}: leader node {leader} ({}), SIGKILLed {} ms after \
         steady, restarted {} s later",
        args.join(" "),
        if leader_is_controller {
            "the active controller".to_string()
        } else {
            format!("controller: node {controller}")
        },
        kill_after.as_millis(),
        DOWN_FOR.as_secs(),
    );
    eprintln!("==> {shown}");
    let client_log = fs::File::create(base.join(format!("{topic}.client.log")))?;
    let mut producer = Command::new(load)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(client_log)
        .spawn()
        .context("starting rdkafka_load")?;
    let stdout = producer.stdout.take().context("producer stdout")?;
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let mut output = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let steady = line.starts_with("steady");
                output.push(line);
                if steady {
                    break;
                }
            }
            Err(_) => {
                let _ = producer.kill();
                let _ = producer.wait();
                bail!("the producer did not get steady: {output:?}");
            }
        }
    }
    std::thread::sleep(kill_after);
    let killed_at = unix_ms(SystemTime::now());
    cluster.kill(victim)?;
    std::thread::sleep(DOWN_FOR);
    cluster.spawn(victim)?;
    let restarted_at = unix_ms(SystemTime::now());
    let status = producer.wait()?;
    output.extend(lines.iter());
    let result = output
        .iter()
        .find_map(|line| line.strip_prefix("result: "))
        .with_context(|| format!("no result line from the producer: {output:?}"))?;
    let value = |key: &str| -> Option<&str> {
        result
            .split(' ')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    };
    let number = |key: &str| {
        value(key)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    let max_gap_ms = number("max_gap_ms");
    let failed = number("failed").max(0.0) as u64 + number("undelivered").max(0.0) as u64;
    let intact = value("read_back") == Some("ok") && number("missing") == 0.0;
    let mut events = vec![
        (
            number("gap_from_unix_ms") as i64,
            "last ack before the gap".to_string(),
        ),
        (
            number("gap_to_unix_ms") as i64,
            "first ack after it".to_string(),
        ),
        (restarted_at, format!("node {leader} restarted")),
    ];
    let (logged, new_leader_at) = log_events(cluster, killed_at, leader, &state.id);
    events.extend(logged);
    events.sort();
    let timeline = events
        .iter()
        .map(|(at, what)| format!("{:+} {what}", at - killed_at))
        .collect::<Vec<_>>()
        .join("; ");
    output.push(format!(
        "timeline (ms after the SIGKILL of node {leader}): {timeline}"
    ));
    if !status.success() {
        output.push(format!("rdkafka_load exited with {status}"));
    }
    Ok(FailoverRun {
        leader_is_controller,
        shown,
        output: output.join("\n"),
        max_gap_ms,
        new_leader_ms: new_leader_at.map(|at| at - killed_at),
        failed,
        intact,
    })
}

/// From the node logs, the first of each failover step after `since` (Unix ms): a new Raft
/// leader (controller), the fencing of `victim`, a new leader of topic `topic_id` (also
/// returned on its own).
fn log_events(
    cluster: &BenchCluster,
    since: i64,
    victim: i32,
    topic_id: &str,
) -> (Vec<(i64, String)>, Option<i64>) {
    let mut raft: Option<(i64, usize)> = None;
    let mut fenced: Option<(i64, usize)> = None;
    let mut leading: Option<(i64, usize)> = None;
    let victim_field = format!("broker={victim}");
    let topic_field = format!("topic_id={topic_id}");
    for index in 0..3 {
        let text = fs::read_to_string(cluster.log(index)).unwrap_or_default();
        for line in text.lines() {
            let Some(at) = line.split_whitespace().next().and_then(parse_log_time) else {
                continue;
            };
            if at < since {
                continue;
            }
            let slot = if line.contains("became raft leader") {
                &mut raft
            } else if line.contains("fencing it") && line.contains(&victim_field) {
                &mut fenced
            } else if line.contains("leading partition") && line.contains(&topic_field) {
                &mut leading
            } else {
                continue;
            };
            if slot.is_none_or(|(first, _)| at < first) {
                *slot = Some((at, index + 1));
            }
        }
    }
    let mut events = Vec::new();
    if let Some((at, node)) = raft {
        events.push((
            at,
            format!("node {node} became the controller (Raft leader)"),
        ));
    }
    if let Some((at, node)) = fenced {
        events.push((at, format!("controller node {node} fenced node {victim}")));
    }
    if let Some((at, node)) = leading {
        events.push((at, format!("node {node} took the partition's leadership")));
    }
    (events, leading.map(|(at, _)| at))
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A tracing timestamp (`2026-11-25T16:41:34.123456Z`) as Unix milliseconds.
fn parse_log_time(stamp: &str) -> Option<i64> {
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut date = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut time = time.split(':');
    let (hour, minute) = (
        time.next()?.parse::<i64>().ok()?,
        time.next()?.parse::<i64>().ok()?,
    );
    let seconds: f64 = time.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3_600 + minute * 60) * 1_000 + (seconds * 1_000.0) as i64)
}

/// Times subscribe() -> first assignment of a new group, `repeat` times against one broker
/// and against a 3-node cluster; returns the docs/benchmarks.md part.
pub(super) fn group_join_part(weir: &Path, load: &Path, repeat: usize) -> Result<String> {
    let mut sections = Vec::new();
    let mut rows = Vec::new();
    // One broker.
    let data_dir = std::env::temp_dir().join(format!("weir-bench-join-{}", std::process::id()));
    let _ = fs::remove_dir_all(&data_dir);
    let bootstrap = format!("127.0.0.1:{}", free_port()?);
    let mut broker = start_broker(weir, &bootstrap, &data_dir)?;
    let single = (|| -> Result<Vec<f64>> {
        let create = [
            "topic",
            "create",
            "group-join",
            "--partitions",
            "2",
            "--bootstrap-server",
            &bootstrap,
        ];
        let (ok, text) = weir_output(weir, &create)?;
        if !ok {
            bail!("creating group-join failed: {text}");
        }
        join_runs(load, &bootstrap, "single node", repeat, &mut sections)
    })();
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = fs::remove_dir_all(&data_dir);
    rows.push(("one broker", single?));
    // Three nodes.
    let base = std::env::temp_dir().join(format!("weir-bench-join-cluster-{}", std::process::id()));
    let mut cluster = BenchCluster::start(weir, &base, "")?;
    let clustered = (|| -> Result<Vec<f64>> {
        cluster.wait_ready()?;
        cluster.create_topic("group-join", 2)?;
        join_runs(
            load,
            &cluster.bootstrap(),
            "3-node cluster",
            repeat,
            &mut sections,
        )
    })();
    drop(cluster);
    let _ = fs::remove_dir_all(&base);
    rows.push(("3-node cluster (RF=3)", clustered?));
    let delay = GROUP_INITIAL_REBALANCE_DELAY_MS;
    let mut part = format!(
        "{GROUP_JOIN_HEADING}\n\n\
         Made by `cargo xtask bench` (alone: `--only group-join`). `rdkafka_load join`\n\
         subscribes a librdkafka consumer (default settings: the classic protocol,\n\
         `range,roundrobin`) to a 2-partition topic in a new group and times subscribe() to\n\
         the first assignment (its rebalance callback): FindCoordinator, JoinGroup (which a\n\
         new group's first rebalance holds for `group.initial.rebalance.delay.ms`, Weir's\n\
         default {delay:.0} ms like Kafka's), SyncGroup. Each run is a new process and a new\n\
         group; the first run against a fresh broker also creates `__consumer_offsets`.\n\
         Target: within the delay + {GROUP_JOIN_SLACK_MS:.0} ms = {:.0} ms.\n\n\
         | broker | group.initial.rebalance.delay.ms | subscribe() to first assignment, each \
         run | median | over the delay (median) |\n|---|---|---|---|---|\n",
        delay + GROUP_JOIN_SLACK_MS,
    );
    for (broker, times) in &rows {
        let median = median(times);
        let _ = writeln!(
            part,
            "| {broker} | {delay:.0} ms | {} | {median:.0} ms | {:+.0} ms |",
            join(times.iter().map(|t| format!("{t:.0} ms"))),
            median - delay,
        );
    }
    let mut all = vec![(
        "cat /proc/loadavg  # after the group-join runs".to_string(),
        fs::read_to_string("/proc/loadavg").unwrap_or_default(),
    )];
    all.extend(sections);
    render_sections(&mut part, &all);
    Ok(part)
}

fn join_runs(
    load: &Path,
    bootstrap: &str,
    label: &str,
    repeat: usize,
    sections: &mut Vec<(String, String)>,
) -> Result<Vec<f64>> {
    let mut times = Vec::new();
    let tag = if label.starts_with("single") {
        "one"
    } else {
        "three"
    };
    for run in 1..=repeat {
        let group = format!("join-{tag}-{run}");
        let args = ["join", bootstrap, "group-join", group.as_str()];
        let shown = format!("rdkafka_load {}  # {label}, run {run}", args.join(" "));
        eprintln!("==> {shown}");
        let output = Command::new(load)
            .args(args)
            .stderr(Stdio::inherit())
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        if !output.status.success() {
            bail!("`{shown}` failed ({}): {stdout}", output.status);
        }
        let ms = stdout
            .split(" ms after subscribe()")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|t| t.parse::<f64>().ok())
            .with_context(|| format!("no time in {stdout:?}"))?;
        times.push(ms);
        sections.push((shown, stdout));
    }
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_are_unix_milliseconds() {
        assert_eq!(parse_log_time("1970-01-01T00:00:01.500000Z"), Some(1_500));
        assert_eq!(
            parse_log_time("2024-02-29T12:00:00.000000Z"),
            Some(1_709_208_000_000)
        );
        assert_eq!(parse_log_time("INFO"), None);
    }

    #[test]
    fn describe_fields() {
        let line = "\tTopic: t\tPartition: 0\tLeader: 2\tLeaderEpoch: 1\tReplicas: 2,3,1\tIsr: 2,3";
        assert_eq!(field(line, "Leader"), Some("2"));
        assert_eq!(field(line, "Isr"), Some("2,3"));
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}
