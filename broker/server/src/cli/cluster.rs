//! `weir cluster describe`: the cluster id, the active controller and the live brokers, as
//! a broker reports them in DescribeCluster (like `kafka-cluster.sh` / `kafka-metadata`).
//! It speaks only Kafka (weir-client's [`weir_client::Admin`]), so it works against any
//! broker.
//!
//! Output: tab-separated `Key: value` fields; a header line (`ClusterId`, `ControllerId`,
//! `BrokerCount`), then one line per broker sorted by id, starting with a tab (`Broker`,
//! `Host`, `Port`, `Rack`, `Controller: yes|no`).

use std::io::Write;

use anyhow::Context;
use weir_client::Admin;
use weir_runtime::TokioRuntime;

use super::topic::BootstrapArgs;

/// `weir cluster ...`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Show the cluster id, the active controller and the brokers.
    Describe(DescribeArgs),
}

#[derive(Debug, clap::Args)]
struct DescribeArgs {
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

/// Runs a `weir cluster` subcommand.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Describe(args) => describe(args).await,
    }
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let runtime = TokioRuntime::new(u64::from(std::process::id()));
    let admin = Admin::connect(runtime, args.bootstrap.client_config())
        .await
        .with_context(|| format!("cannot reach {}", args.bootstrap.bootstrap_server))?;
    let mut cluster = admin
        .describe_cluster()
        .await
        .context("describing the cluster")?;
    cluster.brokers.sort_by_key(|broker| broker.node_id);
    let mut text = format!(
        "ClusterId: {}\tControllerId: {}\tBrokerCount: {}\n",
        cluster.cluster_id,
        cluster.controller_id,
        cluster.brokers.len()
    );
    for broker in &cluster.brokers {
        let controller = if broker.node_id == cluster.controller_id {
            "yes"
        } else {
            "no"
        };
        text.push_str(&format!(
            "\tBroker: {}\tHost: {}\tPort: {}\tRack: {}\tController: {controller}\n",
            broker.node_id,
            broker.host,
            broker.port,
            broker.rack.as_deref().unwrap_or("-"),
        ));
    }
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
