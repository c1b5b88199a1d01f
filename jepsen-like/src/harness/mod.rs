//! The real-process harness (feature `harness`): a Weir cluster of `weir serve` processes,
//! a seeded nemesis, real clients (`weir-client`, and librdkafka through confluent-kafka),
//! a recorded history, the shared checker, and an HTML report. Issue #8.
//!
//! One [`run`]:
//! 1. builds the network ([`net`]: a namespace per node, or proxies) and starts the nodes
//!    ([`cluster`]), creates the workload topic (RF = min(3, nodes), min.insync.replicas=2
//!    from 3 nodes on) and waits until every partition has a leader;
//! 2. prints the [`schedule`] drawn from the seed and plays it ([`nemesis`]) while the
//!    [`workload`] actors and the Python client ([`python`]) run for `--time` seconds;
//! 3. heals everything, waits for the cluster to recover, and runs the final reads;
//! 4. writes `history.jsonl`, checks it ([`crate::check`]), writes `results.json`,
//!    `anomalies.jsonl` and a self-contained `index.html` ([`html`]).
//!
//! Invariants: the run's verdict is valid only if every checker report is valid and no node
//! died on its own; every fault is healed before the final reads; the history is the
//! time-ordered merge of every client's events (see [`recorder`]); whatever happens, the
//! nodes are stopped and the namespaces removed before [`run`] returns (drop guards).
//!
//! Edge code: this module reads clocks, spawns processes and tasks; the determinism rules
//! of the broker crates do not apply (the nemesis schedule is still a pure function of the
//! seed).
#![allow(clippy::disallowed_methods)]

pub mod cluster;
pub mod html;
pub mod nemesis;
pub mod net;
pub mod proxy;
pub mod python;
pub mod recorder;
pub mod schedule;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::sync::Mutex;
use weir_client::{Admin, ClientConfig, NewTopic};
use weir_runtime::TokioRuntime;

use crate::{
    Acks, CheckConfig, Header, History, Isolation, Key, Kind, Mop, Report, SubVia, Value, F,
};
use cluster::Cluster;
use nemesis::{Env, NemesisCtx, SharedEnv};
use net::Net;
use recorder::Recorder;
use schedule::{FaultKind, Schedule, ScheduleSpec};
use workload::{Ctx, WorkloadKind};

/// The workload topic.
pub const TOPIC: &str = "jepsen";
/// How long the cluster may take to create the topic and elect leaders.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Quiet time after healing, before the final reads (Jepsen waits ≥ 10 s).
const RECOVERY_QUIET: Duration = Duration::from_secs(10);
/// Budget of the final reads.
const FINAL_READS_BUDGET: Duration = Duration::from_secs(90);
/// Lines of each node's log shown in the report.
const LOG_TAIL_LINES: usize = 200;

/// A deliberately planted harness bug, to prove the checker catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plant {
    /// Remove one acknowledged value from every poll result (a lost acked write).
    DropAcked,
}

/// Options of one run (the `weir-jepsen run` flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Cluster size (1, 3 or 5).
    pub nodes: u32,
    /// Main phase, seconds.
    pub time_s: u64,
    /// Enabled faults.
    pub nemesis: Vec<FaultKind>,
    /// Workload.
    pub workload: WorkloadKind,
    /// Seed of the schedule and of the actors.
    pub seed: u64,
    /// Reports go under this directory (`<out>/<seed>-<unix time>/`).
    pub out: PathBuf,
    /// The `weir` binary.
    pub weir: PathBuf,
    /// Keys (= partitions of the topic).
    pub keys: u32,
    /// Run the librdkafka client too (queue workload).
    pub rdkafka: bool,
    /// Try network namespaces (else proxies).
    pub netns: bool,
    /// Only the two-down scenario (kill two non-controller nodes, count acked writes).
    pub two_down_only: bool,
    /// A planted bug.
    pub plant: Option<Plant>,
    /// The Python client script.
    pub python_client: PathBuf,
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// True iff the history is valid (and no node crashed on its own).
    pub valid: bool,
    /// The report directory.
    pub dir: PathBuf,
    /// `index.html`.
    pub html: PathBuf,
    /// One-line summary per checker report.
    pub summaries: Vec<String>,
}

/// The acknowledged writes during the "two nodes down" window.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TwoDown {
    /// Nodes killed.
    pub nodes: Vec<u64>,
    /// Window, ms since the start of the main phase.
    pub start_ms: u64,
    /// End of the window.
    pub end_ms: u64,
    /// Sends acknowledged (ok) inside the window, per key.
    pub acked_per_key: BTreeMap<Key, u64>,
    /// Of those, how many no poll ever returned.
    pub lost: u64,
    /// Sends that failed or were indeterminate inside the window.
    pub not_acked: u64,
}

/// One checked history (the whole one, or a restriction of it).
#[derive(Debug)]
pub struct Checked {
    /// What it is.
    pub title: String,
    /// The config used.
    pub config: CheckConfig,
    /// The report.
    pub report: Report,
}

/// Runs one test; `Err` only for harness failures (the cluster never came up, ...).
pub async fn run(options: Options) -> Result<Outcome> {
    let unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = options.out.join(format!("{}-{unix_s}", options.seed));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let schedule = Schedule::generate(&ScheduleSpec {
        seed: options.seed,
        nodes: options.nodes,
        time_ms: options.time_s * 1000,
        kinds: if options.two_down_only {
            Vec::new()
        } else {
            options.nemesis.clone()
        },
        two_down: options.nodes >= 5
            && (options.two_down_only || options.nemesis.contains(&FaultKind::Kill)),
    });
    eprintln!(
        "weir-jepsen: seed {} nodes {} time {}s workload {}",
        options.seed,
        options.nodes,
        options.time_s,
        options.workload.name()
    );
    eprint!("{schedule}");
    std::fs::write(dir.join("schedule.txt"), schedule.to_string())?;

    let tag = std::process::id();
    let net = Net::setup(options.nodes, tag, options.netns).await?;
    eprintln!("weir-jepsen: network mode: {}", net.mode.name());
    let cluster = Cluster::new(&options.weir, &dir, options.nodes, options.keys, &net)?;
    let env: SharedEnv = Arc::new(Mutex::new(Env { cluster, net }));
    let result = run_in(&options, &dir, &schedule, &env).await;
    // Whatever happened: collect logs, stop the nodes, remove the network.
    let mut guard = env.lock().await;
    guard.cluster.stop_all();
    guard.net.teardown();
    drop(guard);
    result
}

async fn run_in(
    options: &Options,
    dir: &Path,
    schedule: &Schedule,
    env: &SharedEnv,
) -> Result<Outcome> {
    let runtime = TokioRuntime::new(options.seed);
    let (bootstrap, mode) = {
        let mut guard = env.lock().await;
        let env = &mut *guard;
        for id in env.cluster.ids() {
            env.cluster.start(id, &env.net).await?;
        }
        let bootstrap: Vec<String> = env
            .cluster
            .ids()
            .iter()
            .map(|&id| env.net.client_addr(id))
            .collect();
        (bootstrap, env.net.mode)
    };
    let topic_note = create_topic(&runtime, &bootstrap, options).await?;
    eprintln!("weir-jepsen: topic {TOPIC} ready ({topic_note})");

    let recorder = Recorder::default();
    let ctx = Ctx {
        recorder: recorder.clone(),
        bootstrap: bootstrap.clone(),
        topic: TOPIC.to_owned(),
        keys: options.keys,
        stop: Arc::new(AtomicBool::new(false)),
        values: Arc::new(AtomicU64::new(1)),
        seed: options.seed,
        runtime: runtime.clone(),
    };
    let start = tokio::time::Instant::now();
    let start_ns = recorder::monotonic_ns();
    let mut actors = Vec::new();
    let mut python = None;
    match options.workload {
        WorkloadKind::Queue => {
            let plain = ctx.plain_keys();
            let idempotent = ctx.idempotent_keys();
            actors.push(tokio::spawn(workload::producer(
                ctx.clone(),
                0,
                plain.clone(),
                false,
            )));
            actors.push(tokio::spawn(workload::producer(
                ctx.clone(),
                1,
                plain.clone(),
                false,
            )));
            actors.push(tokio::spawn(workload::producer(
                ctx.clone(),
                2,
                idempotent.clone(),
                true,
            )));
            actors.push(tokio::spawn(workload::producer(
                ctx.clone(),
                3,
                idempotent.clone(),
                true,
            )));
            actors.push(tokio::spawn(workload::assign_consumer(ctx.clone(), false)));
            actors.push(tokio::spawn(workload::group_member(ctx.clone(), 0)));
            actors.push(tokio::spawn(workload::group_member(ctx.clone(), 1)));
            if options.rdkafka {
                python = Some(python::spawn(
                    &options.python_client,
                    &ctx,
                    &idempotent,
                    options.time_s,
                    dir,
                )?);
            }
        }
        WorkloadKind::Txn => {
            actors.push(tokio::spawn(workload::txn_producer(ctx.clone(), 0)));
            actors.push(tokio::spawn(workload::txn_producer(ctx.clone(), 1)));
            actors.push(tokio::spawn(workload::assign_consumer(ctx.clone(), true)));
        }
    }
    let nemesis_ctx = NemesisCtx {
        recorder: recorder.clone(),
        runtime: runtime.clone(),
        bootstrap: bootstrap.clone(),
        topic: TOPIC.to_owned(),
        nodes: options.nodes,
    };
    let nemesis = tokio::spawn(nemesis::run(
        env.clone(),
        nemesis_ctx,
        schedule.clone(),
        start,
    ));
    let mut problems = Vec::new();
    let main_end = start + Duration::from_secs(options.time_s);
    while tokio::time::Instant::now() < main_end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (id, status) in env.lock().await.cluster.reap_crashed() {
            let problem = format!("node {id} exited on its own ({status})");
            eprintln!("weir-jepsen: {problem}");
            recorder.nemesis("crashed", json!({"nodes": [id], "status": status}));
            problems.push(problem);
        }
    }
    problems.extend(
        nemesis
            .await
            .unwrap_or_else(|e| vec![format!("nemesis task: {e}")]),
    );
    ctx.stop.store(true, Ordering::SeqCst);
    nemesis::heal_all(env, &recorder).await?;
    for actor in actors {
        if tokio::time::timeout(Duration::from_secs(20), actor)
            .await
            .is_err()
        {
            problems.push("an actor did not stop within 20 s after the main phase".into());
        }
    }
    if let Some(child) = python {
        match python::finish(child, &recorder).await {
            Ok(count) => eprintln!("weir-jepsen: librdkafka client recorded {count} events"),
            Err(error) => problems.push(format!("librdkafka client: {error:#}")),
        }
    }
    eprintln!("weir-jepsen: healed; waiting {RECOVERY_QUIET:?} for recovery");
    tokio::time::sleep(RECOVERY_QUIET).await;
    wait_leaders(&runtime, &bootstrap, options.keys, READY_TIMEOUT)
        .await
        .ok();
    let read_committed = options.workload == WorkloadKind::Txn;
    let final_deadline = tokio::time::Instant::now() + FINAL_READS_BUDGET;
    let caught_up = workload::final_reads(ctx.clone(), read_committed, final_deadline).await;
    if !caught_up {
        problems.push("final reads did not reach every high watermark in time".into());
    }
    for (id, status) in env.lock().await.cluster.reap_crashed() {
        problems.push(format!("node {id} exited on its own ({status})"));
    }
    let crashed = problems.iter().any(|p| p.contains("exited on its own"));

    let header = Header {
        config: check_config(options.workload, false),
        extra: [
            ("seed".to_owned(), json!(options.seed)),
            ("nodes".to_owned(), json!(options.nodes)),
            ("workload".to_owned(), json!(options.workload.name())),
            ("network".to_owned(), json!(mode.name())),
            ("start_ns".to_owned(), json!(start_ns)),
        ]
        .into_iter()
        .collect(),
        ..Header::default()
    };
    let mut history = recorder.finish(header);
    let planted = options
        .plant
        .and_then(|plant| plant_bug(&mut history, plant));
    let history_path = dir.join("history.jsonl");
    history
        .write_jsonl(std::io::BufWriter::new(std::fs::File::create(
            &history_path,
        )?))
        .context("writing history.jsonl")?;
    let checked = check_all(&history, options)?;
    for check in &checked {
        let name = if check.title.starts_with("whole") {
            "results.json".to_owned()
        } else {
            "results-idempotent.json".to_owned()
        };
        std::fs::write(dir.join(name), check.report.to_json())?;
    }
    if let Some(whole) = checked.first() {
        std::fs::write(dir.join("anomalies.jsonl"), whole.report.anomalies_jsonl())?;
    }
    let two_down = two_down_stats(&history, start_ns);
    let valid = checked.iter().all(|c| c.report.valid) && !crashed;
    let logs: Vec<(u32, String)> = {
        let guard = env.lock().await;
        guard
            .cluster
            .ids()
            .into_iter()
            .map(|id| (id, guard.cluster.log_tail(id, LOG_TAIL_LINES)))
            .collect()
    };
    let page = html::Page {
        options,
        schedule,
        network: mode.name(),
        topic_note: &topic_note,
        history: &history,
        start_ns,
        checked: &checked,
        valid,
        problems: &problems,
        two_down: two_down.as_ref(),
        logs: &logs,
        planted: planted.as_deref(),
    };
    let html_path = dir.join("index.html");
    std::fs::write(&html_path, html::render(&page)).context("writing index.html")?;
    for problem in &problems {
        eprintln!("weir-jepsen: problem: {problem}");
    }
    Ok(Outcome {
        valid,
        dir: dir.to_path_buf(),
        html: html_path,
        summaries: checked
            .iter()
            .map(|c| format!("{}: {}", c.title, c.report.summary_line()))
            .collect(),
    })
}

/// The checker config of a workload.
pub fn check_config(workload: WorkloadKind, idempotent_keys_only: bool) -> CheckConfig {
    match workload {
        WorkloadKind::Queue => CheckConfig {
            acks: Acks::All,
            idempotence: idempotent_keys_only,
            sub_via: SubVia::Both,
            ..CheckConfig::default()
        },
        WorkloadKind::Txn => CheckConfig {
            acks: Acks::All,
            idempotence: true,
            txn: true,
            isolation: Isolation::ReadCommitted,
            sub_via: SubVia::Assign,
            ..CheckConfig::default()
        },
    }
}

/// Checks the whole history; for `queue`, also the idempotent keys alone with
/// `idempotence: true` (duplicates there are bad; on the plain keys they are allowed).
pub fn check_all(history: &History, options: &Options) -> Result<Vec<Checked>> {
    let config = check_config(options.workload, false);
    let report = crate::check(&config, history).context("checking the history")?;
    let mut checked = vec![Checked {
        title: "whole history".into(),
        config,
        report,
    }];
    if options.workload == WorkloadKind::Queue {
        let keys: BTreeSet<Key> = (options.keys / 2..options.keys).collect();
        let restricted = restrict_keys(history, &keys);
        let config = check_config(options.workload, true);
        let report = crate::check(&config, &restricted).context("checking the idempotent keys")?;
        checked.push(Checked {
            title: format!("idempotent producers' keys {keys:?}"),
            config,
            report,
        });
    }
    Ok(checked)
}

/// The history seen through `keys` only: sends to other keys vanish (invocation and
/// completion alike), polls keep only these keys' records, assigns only these keys.
pub fn restrict_keys(history: &History, keys: &BTreeSet<Key>) -> History {
    let mut events = Vec::with_capacity(history.events.len());
    for event in &history.events {
        let mut event = event.clone();
        match &mut event.value {
            Value::Mops(mops) => {
                let had_sends = mops.iter().any(|m| matches!(m, Mop::Send { .. }));
                mops.retain_mut(|mop| match mop {
                    Mop::Send { key, .. } => keys.contains(key),
                    Mop::Poll(Some(reads)) => {
                        reads.retain(|(key, _)| keys.contains(key));
                        true
                    }
                    Mop::Poll(None) => true,
                });
                if had_sends && mops.is_empty() {
                    continue;
                }
            }
            Value::Keys(list) => list.retain(|key| keys.contains(key)),
            Value::Other(_) => {}
        }
        events.push(event);
    }
    History {
        header: history.header.clone(),
        events,
    }
}

/// Applies a planted bug to the recorded history; returns what was done.
fn plant_bug(history: &mut History, plant: Plant) -> Option<String> {
    match plant {
        Plant::DropAcked => {
            // The first acknowledged send that some poll returned.
            let acked = history
                .events
                .iter()
                .filter(|e| e.kind == Kind::Ok && e.f == F::Send)
                .find_map(|e| {
                    e.mops().iter().find_map(|m| match m {
                        Mop::Send {
                            key,
                            offset: Some(_),
                            value,
                        } => Some((*key, *value)),
                        _ => None,
                    })
                })?;
            for event in &mut history.events {
                if let Value::Mops(mops) = &mut event.value {
                    for mop in mops {
                        if let Mop::Poll(Some(reads)) = mop {
                            for (key, list) in reads.iter_mut() {
                                if *key == acked.0 {
                                    list.retain(|(_, value)| *value != acked.1);
                                }
                            }
                        }
                    }
                }
            }
            Some(format!(
                "planted: dropped acknowledged value {} of key {} from every poll",
                acked.1, acked.0
            ))
        }
    }
}

/// Acked writes during the two-down window, and whether any of them was lost.
fn two_down_stats(history: &History, start_ns: u64) -> Option<TwoDown> {
    let opened = history.events.iter().find(|e| {
        e.f == F::Other("start-kill".into())
            && matches!(&e.value, Value::Other(v) if v["scenario"] == "two-down")
    })?;
    let nodes: Vec<u64> = match &opened.value {
        Value::Other(v) => v["nodes"]
            .as_array()
            .map(|a| a.iter().filter_map(|n| n.as_u64()).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let from = opened.time.unwrap_or(0);
    let to = history
        .events
        .iter()
        .filter(|e| e.f == F::Other("stop-kill".into()) && e.time.unwrap_or(0) >= from)
        .find_map(|e| e.time)
        .unwrap_or(u64::MAX);
    let mut seen: BTreeSet<(Key, u64)> = BTreeSet::new();
    for event in &history.events {
        for mop in event.mops() {
            if let Mop::Poll(Some(reads)) = mop {
                for (key, list) in reads {
                    seen.extend(list.iter().map(|(_, value)| (*key, *value)));
                }
            }
        }
    }
    let mut stats = TwoDown {
        nodes,
        start_ms: from.saturating_sub(start_ns) / 1_000_000,
        end_ms: to.saturating_sub(start_ns) / 1_000_000,
        ..TwoDown::default()
    };
    for event in &history.events {
        let time = event.time.unwrap_or(0);
        if !(from..=to).contains(&time) || event.f != F::Send || event.kind == Kind::Invoke {
            continue;
        }
        for mop in event.mops() {
            if let Mop::Send { key, value, .. } = mop {
                if event.kind == Kind::Ok {
                    *stats.acked_per_key.entry(*key).or_default() += 1;
                    if !seen.contains(&(*key, *value)) {
                        stats.lost += 1;
                    }
                } else {
                    stats.not_acked += 1;
                }
            }
        }
    }
    Some(stats)
}

fn admin_config(bootstrap: &[String]) -> ClientConfig {
    ClientConfig {
        bootstrap_servers: bootstrap.to_vec(),
        client_id: "jepsen-admin".into(),
        request_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

/// Creates the topic (RF = min(3, nodes); min.insync.replicas=2 from 3 nodes) and waits
/// for leaders; returns a note on what was created.
async fn create_topic(
    runtime: &TokioRuntime,
    bootstrap: &[String],
    options: &Options,
) -> Result<String> {
    let replication = i16::try_from(options.nodes.min(3)).unwrap_or(1);
    let partitions = i32::try_from(options.keys).unwrap_or(1);
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let mut with_min_isr = options.nodes >= 3;
    let mut last_error = String::new();
    while tokio::time::Instant::now() < deadline {
        let Ok(admin) = Admin::connect(runtime.clone(), admin_config(bootstrap)).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let mut topic = NewTopic::new(TOPIC, partitions, replication);
        if with_min_isr {
            topic
                .configs
                .push(("min.insync.replicas".into(), "2".into()));
        }
        match admin.create_topic(topic).await {
            Ok(()) => break,
            Err(error) => {
                let text = error.to_string();
                if text.contains("TOPIC_ALREADY_EXISTS") {
                    break;
                }
                if with_min_isr && text.contains("CONFIG") {
                    // The broker refuses the topic config: create without, and say so.
                    with_min_isr = false;
                }
                last_error = text;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    wait_leaders(
        runtime,
        bootstrap,
        options.keys,
        deadline.saturating_duration_since(tokio::time::Instant::now()),
    )
    .await
    .with_context(|| {
        format!("topic {TOPIC} never got leaders (last create error: {last_error})")
    })?;
    Ok(format!(
        "{partitions} partitions, replication factor {replication}, min.insync.replicas {}",
        if with_min_isr { "2" } else { "broker default" }
    ))
}

async fn wait_leaders(
    runtime: &TokioRuntime,
    bootstrap: &[String],
    keys: u32,
    timeout: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(admin) = Admin::connect(runtime.clone(), admin_config(bootstrap)).await {
            if let Ok(mut topics) = admin.describe_topics(&[TOPIC.to_owned()]).await {
                if let Some(Ok(topic)) = topics.pop() {
                    let led = topic.partitions.iter().filter(|p| p.leader_id >= 0).count();
                    if led == usize::try_from(keys).unwrap_or(0) {
                        return Ok(());
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("partitions of {TOPIC} have no leader after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
