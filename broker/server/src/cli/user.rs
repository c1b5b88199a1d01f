//! `weir user add|list|remove`: SCRAM users (KIP-554) over the Kafka protocol, through
//! weir-client's admin calls, like `kafka-configs.sh --entity-type users`. The salt and
//! the salted password are computed here; the password never leaves this process.

use anyhow::{bail, Context};
use weir_client::scram_admin::SCRAM_ITERATIONS_DEFAULT;
use weir_client::Admin;
use weir_runtime::TokioRuntime;
use weir_wire::sasl::{ScramMechanism, SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN};

use super::topic::BootstrapArgs;

/// `weir user ...`.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add a SCRAM user (or replace its credential for the mechanism).
    Add {
        /// User name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, value_name = "MECHANISM")]
        mechanism: String,
        /// The password.
        #[arg(long)]
        password: String,
        /// PBKDF2 iterations (4096..=16384).
        #[arg(long, default_value_t = SCRAM_ITERATIONS_DEFAULT)]
        iterations: u32,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// List SCRAM users and their mechanisms.
    List {
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Remove a user's credential for a mechanism.
    Remove {
        /// User name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, value_name = "MECHANISM")]
        mechanism: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

/// Run `weir user ...`.
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Add {
            name,
            mechanism,
            password,
            iterations,
            bootstrap,
        } => {
            let mechanism = scram(&mechanism)?;
            if !(SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&iterations) {
                bail!(
                    "--iterations must be within {SCRAM_ITERATIONS_MIN}..={SCRAM_ITERATIONS_MAX}"
                );
            }
            let admin = admin(&bootstrap).await?;
            admin
                .upsert_scram_credential(&name, mechanism, &password, iterations)
                .await
                .with_context(|| format!("cannot add user {name}"))?;
            println!(
                "user={name} mechanism={} iterations={iterations} added",
                mechanism.name()
            );
        }
        UserCommand::List { bootstrap } => {
            let admin = admin(&bootstrap).await?;
            let users = admin.describe_scram_credentials(None).await?;
            for user in users {
                for (mechanism, iterations) in user.credentials {
                    println!(
                        "user={} mechanism={} iterations={iterations}",
                        user.user,
                        mechanism.name()
                    );
                }
            }
        }
        UserCommand::Remove {
            name,
            mechanism,
            bootstrap,
        } => {
            let mechanism = scram(&mechanism)?;
            let admin = admin(&bootstrap).await?;
            admin
                .delete_scram_credential(&name, mechanism)
                .await
                .with_context(|| format!("cannot remove user {name}"))?;
            println!("user={name} mechanism={} removed", mechanism.name());
        }
    }
    Ok(())
}

fn scram(name: &str) -> anyhow::Result<ScramMechanism> {
    ScramMechanism::parse(&name.to_ascii_uppercase())
        .with_context(|| format!("--mechanism {name}: SCRAM-SHA-256 or SCRAM-SHA-512"))
}

async fn admin(bootstrap: &BootstrapArgs) -> anyhow::Result<Admin<TokioRuntime>> {
    let runtime = TokioRuntime::from_entropy();
    Admin::connect(runtime, bootstrap.client_config()?)
        .await
        .with_context(|| format!("cannot reach {}", bootstrap.bootstrap_server))
}
