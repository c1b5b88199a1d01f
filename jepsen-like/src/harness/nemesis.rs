//! The nemesis: plays a [`Schedule`] against the cluster and records every step in the
//! history (`process: "nemesis"`, `f: "start-kill"`/`"stop-kill"`, ..., value = the nodes
//! or links acted on), so the report can shade fault windows and name what happened.
//!
//! Symbolic targets are resolved when their window opens: the partition leader and the
//! controller from the cluster's own metadata (through `weir-client`'s admin client), the
//! "two nodes down" pair as two non-controller nodes that share as few replica sets as the
//! topic allows. A resolution that fails falls back to node 1's neighbours, and says so.
//!
//! Kills of several nodes (a majority, the two-down pair, `kill-majority`) send every
//! `SIGKILL` before reaping any process, and their restarts spawn every node before waiting
//! for any to listen: the nodes go down at the same instant and come back together, and no
//! restart waits for the cluster to recover. A `kill-leader-controller` window has a third
//! step inside it: while the leader it killed is down, the active controller (looked up
//! then, never the killed leader) is killed and started again (`restart-controller`).
//!
//! Invariants: windows open and close in schedule order; closing a window undoes exactly
//! what opening it did (kills restart the nodes it killed, pauses resume them, partitions
//! restore the links it cut unless another open window still cuts them); [`heal_all`]
//! leaves every node up and every link whole.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tokio::sync::Mutex;
use weir_client::Admin;
use weir_runtime::TokioRuntime;

use super::cluster::Cluster;
use super::net::Net;
use super::recorder::Recorder;
use super::schedule::{Fault, Schedule, Target};

/// The cluster and its network, owned together (the nemesis and the harness share it).
#[derive(Debug)]
pub struct Env {
    /// Processes.
    pub cluster: Cluster,
    /// Network.
    pub net: Net,
}

/// Shared handle.
pub type SharedEnv = Arc<Mutex<Env>>;

/// What the nemesis needs besides the environment.
#[derive(Debug, Clone)]
pub struct NemesisCtx {
    /// The history.
    pub recorder: Recorder,
    /// Client runtime (for metadata lookups).
    pub runtime: TokioRuntime,
    /// Bootstrap addresses.
    pub bootstrap: Vec<String>,
    /// The workload topic.
    pub topic: String,
    /// Cluster size.
    pub nodes: u32,
}

/// One opened window: what to undo.
#[derive(Debug)]
enum Opened {
    Killed(Vec<u32>),
    Paused(Vec<u32>),
    Cut(Vec<(u32, u32)>),
    Netem(Vec<u32>),
}

/// What happens to a window at one instant. At the same instant: closes, then opens, then
/// steps inside windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Close,
    Open,
    /// `kill-leader-controller`: restart the controller while the leader is down.
    Inside,
}

/// Plays `schedule` from `start`; returns the problems met (not fatal to the run).
pub async fn run(
    env: SharedEnv,
    ctx: NemesisCtx,
    schedule: Schedule,
    start: tokio::time::Instant,
) -> Vec<String> {
    let mut steps: Vec<(u64, Step, usize)> = Vec::new();
    for (index, window) in schedule.windows.iter().enumerate() {
        steps.push((window.start_ms, Step::Open, index));
        steps.push((window.end_ms, Step::Close, index));
        if let Fault::KillLeaderController {
            controller_after_ms,
        } = window.fault
        {
            steps.push((window.start_ms + controller_after_ms, Step::Inside, index));
        }
    }
    // By instant, then closes, opens, inside steps (`Step`'s order), then schedule order.
    steps.sort_by_key(|&(at, step, index)| (at, step, index));
    let mut opened: Vec<Option<Opened>> = (0..schedule.windows.len()).map(|_| None).collect();
    let mut problems = Vec::new();
    for (at, step, index) in steps {
        tokio::time::sleep_until(start + Duration::from_millis(at)).await;
        let window = &schedule.windows[index];
        match step {
            Step::Open => match open_window(&env, &ctx, &window.fault).await {
                Ok(done) => opened[index] = Some(done),
                Err(error) => problems.push(format!("opening {}: {error:#}", window.fault)),
            },
            Step::Inside => {
                // A window that failed to open (already a problem) has nothing inside.
                let Some(Opened::Killed(down)) = &opened[index] else {
                    continue;
                };
                let down = down.clone();
                let deadline = start + Duration::from_millis(window.end_ms);
                if let Err(error) = restart_controller(&env, &ctx, &down, deadline).await {
                    problems.push(format!("restarting the controller: {error:#}"));
                }
            }
            Step::Close => {
                if let Some(done) = opened[index].take() {
                    if let Err(error) = close_window(&env, &ctx, &done).await {
                        problems.push(format!("closing {}: {error:#}", window.fault));
                    }
                }
            }
        }
    }
    problems
}

/// An admin client on the cluster, or `None` when none connects within 5 s.
async fn admin(ctx: &NemesisCtx) -> Option<Admin<TokioRuntime>> {
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        Admin::connect(
            ctx.runtime.clone(),
            weir_client::ClientConfig {
                bootstrap_servers: ctx.bootstrap.clone(),
                request_timeout: Duration::from_secs(3),
                ..weir_client::ClientConfig::default()
            },
        ),
    )
    .await;
    match connected {
        Ok(Ok(admin)) => Some(admin),
        _ => None,
    }
}

/// The active controller as the cluster reports it, if it names one.
async fn controller(ctx: &NemesisCtx) -> Option<u32> {
    let admin = admin(ctx).await?;
    let id = admin.describe_cluster().await.ok()?.controller_id;
    u32::try_from(id)
        .ok()
        .filter(|&id| (1..=ctx.nodes).contains(&id))
}

/// The `kill-leader-controller` step: while `down` (the killed leader) is down, `kill -9`
/// the active controller and start it again at once. The controller is looked up now,
/// retrying until one that is not down is named (a new one must be elected when the leader
/// was the controller) or until shortly before `deadline`; then any node that is up is
/// restarted instead, and the event says so.
async fn restart_controller(
    env: &SharedEnv,
    ctx: &NemesisCtx,
    down: &[u32],
    deadline: tokio::time::Instant,
) -> Result<()> {
    let give_up = (tokio::time::Instant::now() + Duration::from_secs(3))
        .min(deadline - Duration::from_millis(500));
    let named = loop {
        if let Some(id) = controller(ctx).await.filter(|id| !down.contains(id)) {
            break Some(id);
        }
        if tokio::time::Instant::now() + Duration::from_millis(250) >= give_up {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (node, note) = match named {
        Some(id) => (id, None),
        None => {
            let Some(up) = (1..=ctx.nodes).find(|id| !down.contains(id)) else {
                anyhow::bail!("no node is up besides {down:?}");
            };
            (
                up,
                Some(format!(
                    "no live controller named (unknown, or still the killed leader); \
                     restarting node {up}"
                )),
            )
        }
    };
    let mut guard = env.lock().await;
    let env = &mut *guard;
    env.cluster.kill_all(&[node])?;
    let started = env.cluster.start_all(&[node], &env.net).await;
    drop(guard);
    ctx.recorder.nemesis(
        "restart-controller",
        json!({"nodes": [node], "leader_down": down, "note": note}),
    );
    started
}

async fn resolve(ctx: &NemesisCtx, target: &Target) -> (Vec<u32>, Option<String>) {
    let fallback = |why: String| (vec![1], Some(why));
    if let Target::Nodes(nodes) = target {
        return (nodes.clone(), None);
    }
    let Some(admin) = admin(ctx).await else {
        return fallback("admin client could not connect; using node 1".into());
    };
    let controller = admin.describe_cluster().await.map(|c| c.controller_id);
    match target {
        Target::Nodes(nodes) => (nodes.clone(), None),
        Target::Controller => match controller {
            Ok(id) if id >= 1 => (vec![u32::try_from(id).unwrap_or(1)], None),
            _ => fallback("controller unknown; using node 1".into()),
        },
        Target::Leader => {
            let described = admin
                .describe_topics(std::slice::from_ref(&ctx.topic))
                .await;
            let leader = described
                .ok()
                .and_then(|mut topics| topics.pop())
                .and_then(Result::ok)
                .and_then(|topic| topic.partitions.into_iter().find(|p| p.partition == 0))
                .map(|p| p.leader_id);
            match leader {
                Some(id) if id >= 1 => (vec![u32::try_from(id).unwrap_or(1)], None),
                _ => fallback("leader of partition 0 unknown; using node 1".into()),
            }
        }
        Target::TwoNonController => {
            let controller = controller.ok().and_then(|id| u32::try_from(id).ok());
            let replica_sets: Vec<BTreeSet<u32>> = admin
                .describe_topics(std::slice::from_ref(&ctx.topic))
                .await
                .ok()
                .and_then(|mut topics| topics.pop())
                .and_then(Result::ok)
                .map(|topic| {
                    topic
                        .partitions
                        .iter()
                        .map(|p| {
                            p.replica_nodes
                                .iter()
                                .filter_map(|&n| u32::try_from(n).ok())
                                .collect()
                        })
                        .collect()
                })
                .unwrap_or_default();
            let candidates: Vec<u32> = (1..=ctx.nodes).filter(|&n| Some(n) != controller).collect();
            let mut best: Option<(usize, (u32, u32))> = None;
            for (i, &a) in candidates.iter().enumerate() {
                for &b in &candidates[i + 1..] {
                    let shared = replica_sets
                        .iter()
                        .filter(|set| set.contains(&a) && set.contains(&b))
                        .count();
                    if best.is_none_or(|(s, _)| shared < s) {
                        best = Some((shared, (a, b)));
                    }
                }
            }
            match best {
                Some((_, (a, b))) => (vec![a, b], None),
                None => fallback("fewer than two non-controller nodes".into()),
            }
        }
    }
}

async fn open_window(env: &SharedEnv, ctx: &NemesisCtx, fault: &Fault) -> Result<Opened> {
    match fault {
        Fault::KillMajority(nodes) => {
            env.lock().await.cluster.kill_all(nodes)?;
            let value = json!({
                "nodes": nodes, "target": format!("majority {nodes:?}"), "note": null,
                "scenario": "kill-majority"
            });
            ctx.recorder.nemesis("start-kill", value);
            Ok(Opened::Killed(nodes.clone()))
        }
        Fault::KillLeaderController { .. } => {
            let (nodes, note) = resolve(ctx, &Target::Leader).await;
            env.lock().await.cluster.kill_all(&nodes)?;
            let value = json!({
                "nodes": nodes, "target": Target::Leader.to_string(), "note": note,
                "scenario": "kill-leader-controller"
            });
            ctx.recorder.nemesis("start-kill", value);
            Ok(Opened::Killed(nodes))
        }
        Fault::Kill(target) | Fault::Pause(target) => {
            let (nodes, note) = resolve(ctx, target).await;
            let kill = matches!(fault, Fault::Kill(_));
            let mut guard = env.lock().await;
            if kill {
                // Every node at the same instant.
                guard.cluster.kill_all(&nodes)?;
            } else {
                for &node in &nodes {
                    guard.cluster.pause(node)?;
                }
            }
            drop(guard);
            let f = if kill { "start-kill" } else { "start-pause" };
            let what = if matches!(target, Target::TwoNonController) {
                "two-down"
            } else {
                ""
            };
            let value = json!({
                "nodes": nodes, "target": target.to_string(), "note": note, "scenario": what
            });
            ctx.recorder.nemesis(f, value);
            Ok(if kill {
                Opened::Killed(nodes)
            } else {
                Opened::Paused(nodes)
            })
        }
        Fault::Partition(grudge) => {
            let links = grudge.cut_links(ctx.nodes);
            env.lock().await.net.cut(&links)?;
            ctx.recorder.nemesis(
                "start-partition",
                json!({"links": links, "grudge": fault.to_string()}),
            );
            Ok(Opened::Cut(links))
        }
        Fault::Netem {
            nodes,
            delay_ms,
            jitter_ms,
            loss_percent,
        } => {
            env.lock()
                .await
                .net
                .netem(nodes, *delay_ms, *jitter_ms, *loss_percent)?;
            ctx.recorder.nemesis(
                "start-netem",
                json!({"nodes": nodes, "what": fault.to_string()}),
            );
            Ok(Opened::Netem(nodes.clone()))
        }
    }
}

async fn close_window(env: &SharedEnv, ctx: &NemesisCtx, opened: &Opened) -> Result<()> {
    let mut guard = env.lock().await;
    let env = &mut *guard;
    match opened {
        Opened::Killed(nodes) => {
            // Together: every node is spawned before any is waited for.
            let started = env.cluster.start_all(nodes, &env.net).await;
            drop(guard);
            ctx.recorder.nemesis("stop-kill", json!({"nodes": nodes}));
            started?;
        }
        Opened::Paused(nodes) => {
            for &node in nodes {
                env.cluster.resume(node)?;
            }
            drop(guard);
            ctx.recorder.nemesis("stop-pause", json!({"nodes": nodes}));
        }
        Opened::Cut(links) => {
            // Windows never overlap with another partition (schedule invariant).
            env.net.heal_links()?;
            drop(guard);
            ctx.recorder
                .nemesis("stop-partition", json!({"links": links}));
        }
        Opened::Netem(nodes) => {
            env.net.clear_netem()?;
            drop(guard);
            ctx.recorder.nemesis("stop-netem", json!({"nodes": nodes}));
        }
    }
    Ok(())
}

/// Heals everything: network first, then resumes and restarts every node.
pub async fn heal_all(env: &SharedEnv, recorder: &Recorder) -> Result<()> {
    let mut guard = env.lock().await;
    let env = &mut *guard;
    env.net.heal()?;
    env.cluster.heal(&env.net).await?;
    drop(guard);
    recorder.nemesis("heal", json!({"all": true}));
    Ok(())
}
