//! `cargo xtask jepsen`: a Jepsen-style test of a real Weir cluster (issue #8).
//!
//! Builds `weir` and the `weir-jepsen` harness in release, then runs the harness with the
//! given flags; the harness starts the cluster, plays the seeded nemesis, records and checks
//! the history and writes `target/jepsen/<seed>-<time>/index.html`. The exit code is the
//! harness's: 0 only when the history is valid. See docs/jepsen.md.

use std::process::Command;

use anyhow::{Context, Result};

use crate::project_root;

/// The flags of `cargo xtask jepsen` (passed to the harness as they are).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct JepsenArgs {
    /// Cluster size: 1, 3 or 5.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Main phase, seconds.
    #[arg(long, default_value_t = 60)]
    pub time: u64,
    /// Faults, comma separated, or none: kill, pause, partition, netem,
    /// kill-majority (a majority killed at once, down 1-4 s, restarted together),
    /// kill-leader-controller (the partition leader killed; while it is down the active
    /// controller is killed and restarted; then the leader restarts). See docs/jepsen.md.
    #[arg(long, default_value = "kill,partition")]
    pub nemesis: String,
    /// Workload: queue or txn.
    #[arg(long, default_value = "queue")]
    pub workload: String,
    /// Seed (default: from the clock; printed either way).
    #[arg(long)]
    pub seed: Option<u64>,
    /// A scenario instead of the random schedule: two-down.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Plant a harness bug the checker must reject: drop-acked.
    #[arg(long)]
    pub plant: Option<String>,
    /// Skip the librdkafka (confluent-kafka) client.
    #[arg(long)]
    pub no_rdkafka: bool,
    /// Use the TCP-proxy network even when network namespaces work.
    #[arg(long)]
    pub no_netns: bool,
}

/// The release build of `weir` and the `weir-jepsen` harness, in one cargo invocation:
/// built apart, each resolves its dependencies' features on its own (the harness's tree
/// asks for fewer), so the second build compiled tokio, ring and the rest again (114 s
/// in CI). CI's release step builds with exactly these arguments, so this run's build
/// finds everything built.
pub(crate) const RELEASE_BUILD: &[&str] = &[
    "build",
    "--release",
    "-p",
    "weir",
    "-p",
    "weir-jepsen",
    "--features",
    "weir-jepsen/harness",
];

/// Builds, runs, and returns whether the history was valid.
pub(crate) fn run(args: &JepsenArgs) -> Result<bool> {
    let root = project_root();
    eprintln!("==> cargo {}", RELEASE_BUILD.join(" "));
    let status = Command::new("cargo")
        .args(RELEASE_BUILD)
        .current_dir(&root)
        .status()
        .context("building weir and weir-jepsen")?;
    if !status.success() {
        anyhow::bail!("building weir and weir-jepsen failed ({status})");
    }
    let mut harness = Command::new(root.join("target/release/weir-jepsen"));
    harness
        .current_dir(&root)
        .args(["--nodes", &args.nodes.to_string()])
        .args(["--time", &args.time.to_string()])
        .args(["--nemesis", &args.nemesis])
        .args(["--workload", &args.workload])
        .args(["--weir", "target/release/weir"])
        .args(["--out", "target/jepsen"]);
    if let Some(seed) = args.seed {
        harness.args(["--seed", &seed.to_string()]);
    }
    if let Some(scenario) = &args.scenario {
        harness.args(["--scenario", scenario]);
    }
    if let Some(plant) = &args.plant {
        harness.args(["--plant", plant]);
    }
    if args.no_rdkafka {
        harness.arg("--no-rdkafka");
    }
    if args.no_netns {
        harness.arg("--no-netns");
    }
    let status = harness.status().context("running weir-jepsen")?;
    match status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => anyhow::bail!("weir-jepsen failed ({status})"),
    }
}

/// The short CI runs: 3 nodes, 45 s, kill + partition + majority kills, seed 1 (the seed
/// whose simultaneous kill of two of three nodes once lost acknowledged writes, issue 12),
/// then 5 nodes, 30 s, kill + pause + partition. The long set is `cargo xtask soak`.
pub(crate) fn ci() -> Result<()> {
    let cluster = Command::new(project_root().join("target/release/weir"))
        .args(["serve", "--help"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("--voters"))
        .unwrap_or(false);
    let three = JepsenArgs {
        nodes: if cluster { 3 } else { 1 },
        time: 45,
        nemesis: "kill,partition,kill-majority".into(),
        workload: "queue".into(),
        seed: Some(1),
        scenario: None,
        plant: None,
        no_rdkafka: false,
        no_netns: false,
    };
    if !run(&three)? {
        anyhow::bail!(
            "jepsen: the history of the 3-node CI run is not valid (see the report above)"
        );
    }
    if cluster {
        let five = JepsenArgs {
            nodes: 5,
            time: 30,
            nemesis: "kill,pause,partition".into(),
            ..three
        };
        if !run(&five)? {
            anyhow::bail!(
                "jepsen: the history of the 5-node CI run is not valid (see the report above)"
            );
        }
    }
    Ok(())
}
