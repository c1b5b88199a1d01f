//! The `weir` binary: `weir serve` runs a broker; the admin and client subcommands live
//! beside it in `cli/`. This is the only place using `anyhow` and `tracing-subscriber`.
//!
//! Adding a subcommand: add a variant to [`Command`] holding its clap `Args` struct, a
//! module `cli/NAME.rs` with `pub async fn run(args) -> anyhow::Result<()>`, a
//! `pub mod NAME;` line in `cli/mod.rs`, and a match arm in [`run`].

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Log filter when RUST_LOG is unset: fjall's own info lines (one per keyspace recovered)
/// drown the broker's.
const LOG_FILTER_DEFAULT: &str = "info,fjall=warn,lsm_tree=warn";

/// Worker threads of the tokio runtime for the client commands (topic, produce, ...): they
/// are one connection's work.
const CLIENT_WORKER_THREADS: usize = 2;

/// `weir --version`: the crate version, then the build's identity (build.rs): the commit
/// it was built from and its cargo profile, e.g. `weir 0.1.0 (5a227a3c1f release)`.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("WEIR_BUILD_COMMIT"),
    " ",
    env!("WEIR_BUILD_PROFILE"),
    ")"
);

/// Weir: a Kafka-compatible broker.
#[derive(Debug, Parser)]
#[command(name = "weir", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker.
    Serve(weir::config::ServeArgs),
    // Client-side subcommands (cli/{topic,produce,consume,bench}.rs, over weir-client).
    /// Create, list, describe or delete topics.
    Topic(cli::topic::TopicArgs),
    /// Console producer: one record per stdin line.
    Produce(cli::produce::ProduceArgs),
    /// Console consumer: one line per record on stdout.
    Consume(cli::consume::ConsumeArgs),
    /// Load generators and the loopback throughput probe.
    Bench(cli::bench::BenchArgs),
    /// List, describe, reset offsets of, or delete consumer groups.
    Group(cli::group::GroupArgs),
    /// List or describe transactions and the producers of partitions.
    Txn(cli::txn::TxnArgs),
    /// SCRAM users: add, list, remove (KIP-554).
    User(cli::user::UserArgs),
    /// ACLs: add, list, remove (kafka-acls.sh's flags and output).
    Acl(cli::acl::AclArgs),
    /// Describe the cluster: id, active controller, brokers.
    Cluster(cli::cluster::ClusterArgs),
    /// Feature levels: describe, or upgrade metadata.version after a rolling upgrade.
    Features(cli::features::FeaturesArgs),
    /// The schema registry: list subjects, get, register or check schemas.
    Schema(cli::schema::SchemaArgs),
}

fn main() -> ExitCode {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(LOG_FILTER_DEFAULT));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // `serve` reads its config first: `num.network.threads` sizes the runtime it runs on.
    let (command, worker_threads) = match cli.command {
        Command::Serve(args) => match weir::config::ServerConfig::from_args(&args) {
            Ok(config) => {
                let threads = config.network_threads.unwrap_or_else(cores);
                (Run::Serve(Box::new(config)), threads)
            }
            Err(error) => {
                eprintln!("weir: {:#}", anyhow::Error::from(error));
                return ExitCode::FAILURE;
            }
        },
        other => (Run::Client(Box::new(other)), CLIENT_WORKER_THREADS),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("weir: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match command {
        Run::Serve(config) => runtime.block_on(cli::serve::run(*config, worker_threads)),
        Run::Client(command) => runtime.block_on(run(*command)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weir: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// What `main` runs once the runtime is built.
enum Run {
    Serve(Box<weir::config::ServerConfig>),
    Client(Box<Command>),
}

/// The cores this process may run on (its affinity mask, so `taskset -c 0` gives 1), at
/// least 1.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let config = weir::config::ServerConfig::from_args(&args)?;
            cli::serve::run(config, CLIENT_WORKER_THREADS).await
        }
        Command::Topic(args) => cli::topic::run(args).await,
        Command::Produce(args) => cli::produce::run(args).await,
        Command::Consume(args) => cli::consume::run(args).await,
        Command::Bench(args) => cli::bench::run(args).await,
        Command::Group(args) => cli::group::run(args).await,
        Command::Txn(args) => cli::txn::run(args).await,
        Command::User(args) => cli::user::run(args).await,
        Command::Acl(args) => cli::acl::run(args).await,
        Command::Cluster(args) => cli::cluster::run(args).await,
        Command::Features(args) => cli::features::run(args).await,
        Command::Schema(args) => cli::schema::run(args).await,
    }
}
