//! The nemesis: plays a [`Schedule`] against the cluster and records every step in the
//! history (`process: "nemesis"`, `f: "start-kill"`/`"stop-kill"`, ..., value = the nodes
//! or links acted on), so the report can shade fault windows and name what happened.
//!
//! Symbolic targets are resolved when their window opens: the partition leader and the
//! controller from the cluster's own metadata (through `weir-client`'s admin client), the
//! "two nodes down" pair as two non-controller nodes that share as few replica sets as the
//! topic allows. A resolution that fails falls back to node 1's neighbours, and says so.
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

/// Plays `schedule` from `start`; returns the problems met (not fatal to the run).
pub async fn run(
    env: SharedEnv,
    ctx: NemesisCtx,
    schedule: Schedule,
    start: tokio::time::Instant,
) -> Vec<String> {
    let mut steps: Vec<(u64, bool, usize)> = Vec::new();
    for (index, window) in schedule.windows.iter().enumerate() {
        steps.push((window.start_ms, true, index));
        steps.push((window.end_ms, false, index));
    }
    // Closes before opens at the same instant, then schedule order.
    steps.sort_by_key(|&(at, open, index)| (at, open, index));
    let mut opened: Vec<Option<Opened>> = (0..schedule.windows.len()).map(|_| None).collect();
    let mut problems = Vec::new();
    for (at, open, index) in steps {
        tokio::time::sleep_until(start + Duration::from_millis(at)).await;
        let window = &schedule.windows[index];
        if open {
            match open_window(&env, &ctx, &window.fault).await {
                Ok(done) => opened[index] = Some(done),
                Err(error) => problems.push(format!("opening {}: {error:#}", window.fault)),
            }
        } else if let Some(done) = opened[index].take() {
            if let Err(error) = close_window(&env, &ctx, &done).await {
                problems.push(format!("closing {}: {error:#}", window.fault));
            }
        }
    }
    problems
}

async fn resolve(ctx: &NemesisCtx, target: &Target) -> (Vec<u32>, Option<String>) {
    let fallback = |why: String| (vec![1], Some(why));
    if let Target::Nodes(nodes) = target {
        return (nodes.clone(), None);
    }
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
    let Ok(Ok(admin)) = connected else {
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
        Fault::Kill(target) | Fault::Pause(target) => {
            let (nodes, note) = resolve(ctx, target).await;
            let kill = matches!(fault, Fault::Kill(_));
            let mut guard = env.lock().await;
            for &node in &nodes {
                if kill {
                    guard.cluster.kill(node)?;
                } else {
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
            for &node in nodes {
                env.cluster.start(node, &env.net).await?;
            }
            drop(guard);
            ctx.recorder.nemesis("stop-kill", json!({"nodes": nodes}));
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
