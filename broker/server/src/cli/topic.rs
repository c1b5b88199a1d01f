//! `weir topic create|list|describe|delete`: topic administration over the Kafka protocol
//! (like `kafka-topics.sh`), through weir-client's [`Admin`], so it works against any broker.

use std::io::Write;

use anyhow::{bail, Context};
use weir_client::{Admin, ClientConfig, NewTopic, OffsetSpec, TopicPartition};
use weir_core::node::DIRTY_RATIO_KEY;
use weir_runtime::TokioRuntime;

/// The `--bootstrap-server` flag shared by every client subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct BootstrapArgs {
    /// Broker to bootstrap from, as HOST:PORT (`--bootstrap` is the short spelling).
    #[arg(
        long = "bootstrap-server",
        visible_alias = "bootstrap",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_server: String,
    /// Client properties file (librdkafka style: security.protocol, sasl.mechanism,
    /// sasl.username, sasl.password, ssl.ca.location, ssl.certificate.location,
    /// ssl.key.location, ssl.endpoint.identification.algorithm), as Kafka's tools take it.
    #[arg(long = "command-config", value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

impl BootstrapArgs {
    /// Client settings for this bootstrap server and `--command-config`.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig {
            client_id: "weir-cli".to_owned(),
            ..ClientConfig::with_bootstrap(self.bootstrap_server.clone())
        };
        if let Some(path) = &self.command_config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --command-config {}", path.display()))?;
            super::command_config::apply(&text, &mut config)
                .with_context(|| format!("in --command-config {}", path.display()))?;
        }
        Ok(config)
    }
}

/// `weir topic ...`.
#[derive(Debug, clap::Args)]
pub struct TopicArgs {
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topic names.
    List(ListArgs),
    /// Show partitions, leaders, replicas, ISR, log offsets, the cleanup policy and each
    /// partition's size in bytes (its leader's copy).
    Describe(DescribeArgs),
    /// Delete a topic.
    Delete(DeleteArgs),
    /// Delete the records below an offset of some or all partitions (Kafka's
    /// `kafka-delete-records.sh`; its `--offset-json-file` is accepted too).
    DeleteRecords(DeleteRecordsArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Topic name.
    name: String,
    /// Partition count (-1: the broker's num.partitions).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    partitions: i32,
    /// Replication factor (-1: the broker's default.replication.factor).
    #[arg(long = "replication-factor", default_value_t = -1, allow_hyphen_values = true)]
    replication_factor: i16,
    /// Topic config as KEY=VALUE; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Include internal topics.
    #[arg(long)]
    internal: bool,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct DescribeArgs {
    /// Topic names (all topics when none given).
    names: Vec<String>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct DeleteArgs {
    /// Topic name.
    name: String,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
struct DeleteRecordsArgs {
    /// Topic name (not with --offset-json-file).
    #[arg(
        required_unless_present = "offset_json_file",
        conflicts_with = "offset_json_file"
    )]
    name: Option<String>,
    /// Partitions (repeatable; every partition when none given).
    #[arg(long = "partition")]
    partitions: Vec<i32>,
    /// Records below this offset go; -1 (the default): every record below the high
    /// watermark.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    offset: i64,
    /// Kafka's JSON: {"partitions": [{"topic": T, "partition": P, "offset": O}, ...],
    /// "version": 1}.
    #[arg(long = "offset-json-file", value_name = "FILE")]
    offset_json_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
}

/// Runs a `weir topic` subcommand.
pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    match args.command {
        TopicCommand::Create(args) => create(args).await,
        TopicCommand::List(args) => list(args).await,
        TopicCommand::Describe(args) => describe(args).await,
        TopicCommand::Delete(args) => delete(args).await,
        TopicCommand::DeleteRecords(args) => delete_records(args).await,
    }
}

async fn connect(bootstrap: &BootstrapArgs) -> anyhow::Result<Admin<TokioRuntime>> {
    let runtime = TokioRuntime::new(u64::from(std::process::id()));
    Admin::connect(runtime, bootstrap.client_config()?)
        .await
        .with_context(|| format!("cannot reach {}", bootstrap.bootstrap_server))
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let mut configs = Vec::new();
    for entry in &args.configs {
        let Some((key, value)) = entry.split_once('=') else {
            bail!("--config {entry:?}: expected KEY=VALUE");
        };
        configs.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    let admin = connect(&args.bootstrap).await?;
    let topic = NewTopic {
        name: args.name.clone(),
        partitions: args.partitions,
        replication_factor: args.replication_factor,
        configs,
    };
    admin
        .create_topic(topic)
        .await
        .with_context(|| format!("creating topic {}", args.name))?;
    println!("Created topic {}.", args.name);
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    let names = admin
        .list_topics(args.internal)
        .await
        .context("listing topics")?;
    let mut out = std::io::stdout().lock();
    for name in names {
        writeln!(out, "{name}")?;
    }
    Ok(())
}

/// A partition's local or remote size for `describe`: "?" when the leader did not say,
/// "-" for the remote size of a partition that is not tiered.
fn size_of(
    sizes: &std::collections::BTreeMap<TopicPartition, (Option<i64>, Option<i64>)>,
    topic: &str,
    partition: i32,
    remote: bool,
) -> String {
    let Some((local, uploaded)) = sizes.get(&TopicPartition::new(topic.to_owned(), partition))
    else {
        return "?".to_owned();
    };
    match (remote, local, uploaded) {
        (false, Some(bytes), _) => bytes.to_string(),
        (false, None, _) => "?".to_owned(),
        (true, _, Some(bytes)) => bytes.to_string(),
        (true, _, None) => "-".to_owned(),
    }
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    let descriptions = admin
        .describe_topics(&args.names)
        .await
        .context("describing topics")?;
    // Sizes are best effort too: each partition's leader answers DescribeLogDirs for its
    // copy, and a leader that does not answer leaves "?".
    let described: Vec<String> = (descriptions.iter())
        .filter_map(|d| d.as_ref().ok().map(|topic| topic.name.clone()))
        .collect();
    let sizes = if described.is_empty() {
        Default::default()
    } else {
        (admin.partition_sizes_by_tier(&described).await).unwrap_or_default()
    };
    let mut failed = false;
    let mut text = String::new();
    for description in descriptions {
        let topic = match description {
            Ok(topic) => topic,
            Err(error) => {
                eprintln!("weir: {error}");
                failed = true;
                continue;
            }
        };
        let queries = |spec: OffsetSpec| -> Vec<(TopicPartition, OffsetSpec)> {
            topic
                .partitions
                .iter()
                .map(|p| (TopicPartition::new(topic.name.clone(), p.partition), spec))
                .collect()
        };
        // Offsets are best effort: a partition without a leader still gets described.
        let starts = admin
            .list_offsets(queries(OffsetSpec::Earliest))
            .await
            .unwrap_or_default();
        let ends = admin
            .list_offsets(queries(OffsetSpec::Latest))
            .await
            .unwrap_or_default();
        let offset_of = |listed: &[weir_client::ListedOffset], partition: i32| {
            listed
                .iter()
                .find(|l| l.topic_partition.partition == partition)
                .map_or_else(|| "?".to_owned(), |l| l.offset.to_string())
        };
        let replication_factor = topic
            .partitions
            .first()
            .map_or(0, |p| p.replica_nodes.len());
        let cleanup_policy = (admin.describe_topic_configs(&topic.name).await.ok())
            .and_then(|configs| configs.into_iter().find(|c| c.name == "cleanup.policy"))
            .and_then(|entry| entry.value)
            .unwrap_or_else(|| "?".to_owned());
        // The largest dirty ratio of the topic's partitions on the broker that answers (a
        // Weir key, answered when asked for by name; "-" when the topic is not compacted).
        let dirty_ratio = (admin.describe_topic_config_keys(&topic.name, &[DIRTY_RATIO_KEY]))
            .await
            .ok()
            .and_then(|configs| configs.into_iter().find(|c| c.name == DIRTY_RATIO_KEY))
            .and_then(|entry| entry.value)
            .unwrap_or_else(|| "-".to_owned());
        // New fields go at the end of the lines: scripts read fields by name or position.
        text.push_str(&format!(
            "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\t\
             CleanupPolicy: {}\tDirtyRatio: {}\n",
            topic.name,
            topic.topic_id,
            topic.partitions.len(),
            replication_factor,
            cleanup_policy,
            dirty_ratio,
        ));
        for partition in &topic.partitions {
            text.push_str(&format!(
                "\tTopic: {}\tPartition: {}\tLeader: {}\tLeaderEpoch: {}\tReplicas: {}\t\
                 Isr: {}\tLogStartOffset: {}\tLogEndOffset: {}\tSize: {}\tRemoteSize: {}\n",
                topic.name,
                partition.partition,
                partition.leader_id,
                partition.leader_epoch,
                join(&partition.replica_nodes),
                join(&partition.isr_nodes),
                offset_of(&starts, partition.partition),
                offset_of(&ends, partition.partition),
                size_of(&sizes, &topic.name, partition.partition, false),
                size_of(&sizes, &topic.name, partition.partition, true),
            ));
        }
    }
    std::io::stdout().lock().write_all(text.as_bytes())?;
    if failed {
        bail!("some topics could not be described");
    }
    Ok(())
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    admin
        .delete_topic(&args.name)
        .await
        .with_context(|| format!("deleting topic {}", args.name))?;
    println!("Deleted topic {}.", args.name);
    Ok(())
}

/// The (partition, offset) pairs of Kafka's `--offset-json-file`.
fn offsets_from_json(text: &str) -> anyhow::Result<Vec<(TopicPartition, i64)>> {
    #[derive(serde::Deserialize)]
    struct File {
        partitions: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        topic: String,
        partition: i32,
        offset: i64,
    }
    let file: File = serde_json::from_str(text).context("not Kafka's offset JSON")?;
    Ok((file.partitions.into_iter())
        .map(|e| (TopicPartition::new(e.topic, e.partition), e.offset))
        .collect())
}

async fn delete_records(args: DeleteRecordsArgs) -> anyhow::Result<()> {
    let admin = connect(&args.bootstrap).await?;
    let deletions = match (&args.offset_json_file, &args.name) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            offsets_from_json(&text).with_context(|| format!("in {}", path.display()))?
        }
        (None, Some(name)) => {
            let partitions = if args.partitions.is_empty() {
                let described = admin.describe_topics(std::slice::from_ref(name)).await?;
                let topic = (described.into_iter().next())
                    .context("no answer for the topic")?
                    .with_context(|| format!("describing topic {name}"))?;
                (topic.partitions.iter()).map(|p| p.partition).collect()
            } else {
                args.partitions.clone()
            };
            (partitions.into_iter())
                .map(|p| (TopicPartition::new(name.clone(), p), args.offset))
                .collect()
        }
        (None, None) => bail!("a topic name or --offset-json-file is needed"),
    };
    let mut failed = false;
    for (tp, answer) in admin.delete_records(deletions).await? {
        match answer {
            Ok(low_watermark) => println!("Partition: {tp}\tlow_watermark: {low_watermark}"),
            Err(error) => {
                failed = true;
                println!("Partition: {tp}\terror: {error}");
            }
        }
    }
    if failed {
        bail!("records of some partitions were not deleted");
    }
    Ok(())
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
