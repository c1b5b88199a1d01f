//! `weir features describe|upgrade`: the cluster's feature levels (KIP-584), like
//! `kafka-features.sh`. `describe` prints what a broker's ApiVersions answer says (its
//! build's supported range and the cluster's finalized level); `upgrade --metadata N`
//! finalizes `metadata.version` N through the controller, which refuses it unless every
//! registered node supports N (docs/cluster.md, "Metadata version").

use anyhow::Context;
use weir_client::Admin;
use weir_core::cluster::features::{LEVELS, METADATA_VERSION};
use weir_runtime::TokioRuntime;

use super::topic::BootstrapArgs;

/// `weir features ...`.
#[derive(Debug, clap::Args)]
pub struct FeaturesArgs {
    #[command(subcommand)]
    command: FeaturesCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FeaturesCommand {
    /// Print the supported and finalized feature levels (kafka-features.sh describe).
    Describe {
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Finalize a higher metadata.version once every node runs a build that supports it.
    Upgrade {
        /// The metadata.version level to finalize.
        #[arg(long, value_name = "LEVEL")]
        metadata: i16,
        /// Check that the upgrade would be accepted; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

/// Run `weir features ...`.
pub async fn run(args: FeaturesArgs) -> anyhow::Result<()> {
    match args.command {
        FeaturesCommand::Describe { bootstrap } => {
            let admin = admin(&bootstrap).await?;
            let levels = admin.describe_features().await?;
            for (name, min, max) in &levels.supported {
                let finalized = (levels.finalized.iter())
                    .find(|(finalized, _)| finalized == name)
                    .map_or(0, |(_, level)| *level);
                // kafka-features.sh's layout, one feature per line.
                println!(
                    "Feature: {name}\tSupportedMinVersion: {min}\tSupportedMaxVersion: {max}\t\
                     FinalizedVersionLevel: {finalized}\tEpoch: {}",
                    levels.finalized_epoch
                );
            }
            if levels.supported.is_empty() {
                anyhow::bail!("the broker reported no features (a build without levels?)");
            }
        }
        FeaturesCommand::Upgrade {
            metadata,
            dry_run,
            bootstrap,
        } => {
            let admin = admin(&bootstrap).await?;
            admin
                .upgrade_feature(METADATA_VERSION, metadata, dry_run)
                .await
                .with_context(|| format!("cannot upgrade {METADATA_VERSION} to {metadata}"))?;
            let adds = (LEVELS.iter())
                .find(|(level, _)| i32::from(*level) == i32::from(metadata))
                .map_or("", |(_, adds)| adds);
            let verb = if dry_run {
                "would be finalized"
            } else {
                "finalized"
            };
            println!("{METADATA_VERSION} {metadata} {verb} ({adds})");
        }
    }
    Ok(())
}

async fn admin(bootstrap: &BootstrapArgs) -> anyhow::Result<Admin<TokioRuntime>> {
    let runtime = TokioRuntime::from_entropy();
    Admin::connect(runtime, bootstrap.client_config()?)
        .await
        .with_context(|| format!("cannot reach {}", bootstrap.bootstrap_server))
}
