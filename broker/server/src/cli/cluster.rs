//! `weir cluster describe`: the cluster id, the active controller and the live brokers, as
//! a broker reports them in DescribeCluster (like `kafka-cluster.sh` / `kafka-metadata`).
//! `weir cluster quorum describe|add-controller|remove-controller`: the controller quorum
//! through KIP-853's DescribeQuorum, AddRaftVoter and RemoveRaftVoter (like
//! `kafka-metadata-quorum.sh describe --status --replication`, `add-controller`,
//! `remove-controller`). It speaks only Kafka (weir-client's [`weir_client::Admin`]), so it
//! works against any broker.
//!
//! Output: tab-separated `Key: value` fields. `describe`: a header line (`ClusterId`,
//! `ControllerId`, `BrokerCount`), then one line per broker sorted by id, starting with a
//! tab (`Broker`, `Host`, `Port`, `Rack`, `Controller: yes|no`). `quorum describe`: a header
//! line (`LeaderId`, `LeaderEpoch`, `HighWatermark`, `VoterCount`, `ObserverCount`), then one
//! line per replica, voters first, starting with a tab (`Node`, `Status: Leader|Follower|
//! Observer`, `LogEndOffset`, `Lag`, `Endpoint`). A refused change exits non-zero with
//! Kafka's error name (e.g. `DUPLICATE_VOTER`, `VOTER_NOT_FOUND`) and the broker's reason;
//! "retry later" answers (REQUEST_TIMED_OUT, NOT_CONTROLLER) are retried for 30 s first.
//! `weir cluster elect-leaders`: a preferred-leader election of every partition (like
//! `kafka-leader-election.sh --election-type PREFERRED --all-topic-partitions`); prints one
//! `Elected: TOPIC-PARTITION` line per partition whose leadership moved, then `Moved: N`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use weir_client::{Admin, ClientError, ErrorCode, QuorumDescription};
use weir_runtime::Runtime;
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
    /// The controller quorum (KIP-853): describe it, add or remove a voter.
    #[command(subcommand)]
    Quorum(QuorumCommand),
    /// Move every partition's leadership to its preferred replica where it is not already.
    ElectLeaders(DescribeArgs),
}

#[derive(Debug, clap::Subcommand)]
enum QuorumCommand {
    /// Show the quorum's leader, epoch, high watermark, voters and observers.
    Describe(DescribeArgs),
    /// Make a running node (registered as a broker, following the metadata log) a voter.
    AddController(AddControllerArgs),
    /// Remove a voter; it keeps following the metadata log as an observer.
    RemoveController(RemoveControllerArgs),
}

#[derive(Debug, clap::Args)]
struct AddControllerArgs {
    #[command(flatten)]
    bootstrap: BootstrapArgs,
    /// The node id to add.
    #[arg(long)]
    id: i32,
    /// The node's controller listener, `host:port` (as it registered: its peer address).
    #[arg(long)]
    endpoint: String,
}

#[derive(Debug, clap::Args)]
struct RemoveControllerArgs {
    #[command(flatten)]
    bootstrap: BootstrapArgs,
    /// The voter to remove.
    #[arg(long)]
    id: i32,
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
        ClusterCommand::ElectLeaders(args) => elect_leaders(args).await,
        ClusterCommand::Quorum(QuorumCommand::Describe(args)) => describe_quorum(args).await,
        ClusterCommand::Quorum(QuorumCommand::AddController(args)) => add_controller(args).await,
        ClusterCommand::Quorum(QuorumCommand::RemoveController(args)) => {
            remove_controller(args).await
        }
    }
}

async fn connect(bootstrap: &BootstrapArgs) -> anyhow::Result<Admin<TokioRuntime>> {
    let runtime = TokioRuntime::new(u64::from(std::process::id()));
    Admin::connect(runtime, bootstrap.client_config()?)
        .await
        .with_context(|| format!("cannot reach {}", bootstrap.bootstrap_server))
}

/// How long a voter change is retried while the controller says "later".
const CHANGE_RETRY_MS_MAX: u64 = 30_000;
const CHANGE_RETRY_BACKOFF_MS: u64 = 250;

/// Runs a voter change, retrying (as Kafka's admin client does) while the answer is
/// REQUEST_TIMED_OUT (a change in progress, a new voter still catching up) or
/// NOT_CONTROLLER (the node asked knows no controller yet), for up to
/// [`CHANGE_RETRY_MS_MAX`].
async fn retry_change<F, Fut>(change: F) -> Result<(), ClientError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let runtime = TokioRuntime::new(u64::from(std::process::id()));
    let deadline = runtime.now() + Duration::from_millis(CHANGE_RETRY_MS_MAX);
    loop {
        let outcome = change().await;
        let retriable = matches!(
            outcome.as_ref().err().and_then(ClientError::code),
            Some(ErrorCode::REQUEST_TIMED_OUT | ErrorCode::NOT_CONTROLLER)
        );
        let next = runtime.now() + Duration::from_millis(CHANGE_RETRY_BACKOFF_MS);
        if !retriable || next >= deadline {
            return outcome;
        }
        runtime.sleep_until(next).await;
    }
}

async fn describe_quorum(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    let quorum = admin
        .describe_quorum()
        .await
        .context("describing the controller quorum")?;
    std::io::stdout()
        .lock()
        .write_all(quorum_text(&quorum).as_bytes())?;
    Ok(())
}

/// `quorum describe`'s output (see the module docs).
fn quorum_text(quorum: &QuorumDescription) -> String {
    let p = &quorum.partition;
    let mut text = format!(
        "LeaderId: {}\tLeaderEpoch: {}\tHighWatermark: {}\tVoterCount: {}\tObserverCount: {}\n",
        p.leader_id,
        p.leader_epoch,
        p.high_watermark,
        p.current_voters.len(),
        p.observers.len()
    );
    let leader_end = (p.current_voters.iter())
        .find(|r| r.replica_id == p.leader_id)
        .map_or(-1, |r| r.log_end_offset);
    let voters = p.current_voters.iter().map(|r| (r, true));
    for (replica, voter) in voters.chain(p.observers.iter().map(|r| (r, false))) {
        let status = match (voter, replica.replica_id == p.leader_id) {
            (true, true) => "Leader",
            (true, false) => "Follower",
            (false, _) => "Observer",
        };
        let lag = if leader_end >= 0 && replica.log_end_offset >= 0 {
            (leader_end - replica.log_end_offset).max(0).to_string()
        } else {
            "-".to_string()
        };
        let endpoint = (quorum.nodes.iter())
            .find(|n| n.node_id == replica.replica_id)
            .and_then(|n| n.listeners.first())
            .map_or("-".to_string(), |l| format!("{}:{}", l.host, l.port));
        text.push_str(&format!(
            "\tNode: {}\tStatus: {status}\tLogEndOffset: {}\tLag: {lag}\tEndpoint: {endpoint}\n",
            replica.replica_id, replica.log_end_offset,
        ));
    }
    text
}

async fn add_controller(args: AddControllerArgs) -> anyhow::Result<()> {
    let (host, port) = args
        .endpoint
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
        .with_context(|| format!("--endpoint {} is not host:port", args.endpoint))?;
    let admin = connect(&args.bootstrap).await?;
    retry_change(|| admin.add_raft_voter(args.id, host, port))
        .await
        .with_context(|| format!("adding controller {} ({})", args.id, args.endpoint))?;
    writeln!(
        std::io::stdout().lock(),
        "Added controller {} ({})",
        args.id,
        args.endpoint
    )?;
    Ok(())
}

async fn remove_controller(args: RemoveControllerArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    retry_change(|| admin.remove_raft_voter(args.id))
        .await
        .with_context(|| format!("removing controller {}", args.id))?;
    writeln!(std::io::stdout().lock(), "Removed controller {}", args.id)?;
    Ok(())
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
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

async fn elect_leaders(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    let moved = admin
        .elect_preferred_leaders()
        .await
        .context("electing preferred leaders")?;
    let mut text = String::new();
    for partition in &moved {
        text.push_str(&format!("Elected: {partition}\n"));
    }
    text.push_str(&format!("Moved: {}\n", moved.len()));
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
