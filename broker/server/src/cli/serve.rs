//! `weir serve`: run a broker until it is stopped or its storage fails.

use anyhow::Context;
use weir::config::ServerConfig;
use weir_runtime::TokioRuntime;

/// Run the broker on a runtime of `worker_threads` threads (logged). Returns an error (the
/// process exits 1) on a failed bind or recovery, or a poisoned node.
pub async fn run(config: ServerConfig, worker_threads: usize) -> anyhow::Result<()> {
    tracing::info!(worker_threads, "runtime: num.network.threads");
    let runtime = TokioRuntime::from_entropy();
    let data_dir = config.data_dir.display().to_string();
    let server = weir::server::start_fjall(runtime, config).await?;
    // Printed before the "listening" line, so a harness that waited for that line has it.
    if let Some(metrics) = server.metrics_addr() {
        let scheme = if server.metrics_tls() {
            "https"
        } else {
            "http"
        };
        println!("weir metrics on {scheme}://{metrics}/metrics");
    }
    if let Some(gateway) = server.gateway_addr() {
        let scheme = if server.gateway_tls() { "wss" } else { "ws" };
        println!("weir gateway on {scheme}://{gateway}");
    }
    if let Some(rest) = server.rest_proxy_addr() {
        let scheme = if server.http_tls() { "https" } else { "http" };
        println!("weir REST proxy on {scheme}://{rest}");
    }
    if let Some(registry) = server.schema_registry_addr() {
        let scheme = if server.http_tls() { "https" } else { "http" };
        println!("weir schema registry on {scheme}://{registry}");
    }
    // Every Kafka listener, e.g. "weir listener SSL (SSL) on 127.0.0.1:9093"; the first is
    // also the "listening" line's address.
    for listener in server.listeners() {
        let protocol = listener.protocol.name();
        println!(
            "weir listener {} ({protocol}) on {}",
            listener.name, listener.addr
        );
    }
    if let Some(peer) = server.peer_addr() {
        println!("weir controller listener on {peer}");
    }
    // Test harnesses wait for this exact line on stdout.
    println!(
        "weir listening on {} (node {}, data {data_dir})",
        server.local_addr(),
        server.node_id()
    );
    let shutdown = server.shutdown_handle();
    let stopped = server.wait();
    tokio::pin!(stopped);
    let mut signals = Signals::new()?;
    tokio::select! {
        biased;
        result = &mut stopped => return result.context("weir stopped"),
        signal = signals.next() => tracing::info!("{signal}: shutting down"),
    }
    // SIGTERM (or Ctrl-C): a controlled shutdown, then exit 0. A second signal exits at
    // once (non-zero); SIGKILL is always safe (acknowledged writes are durable already).
    let report = tokio::select! {
        biased;
        report = shutdown.shut_down() => report,
        signal = signals.next() => {
            anyhow::bail!("{signal} again during the controlled shutdown: exiting now");
        }
    };
    if let Some(report) = report {
        print_report(&report);
    }
    stopped.await.context("weir stopped")?;
    Ok(())
}

/// One line on stdout saying how the shutdown went (test harnesses and operators read it).
/// Written without `println!`: stdout may be a closed pipe by now (a supervisor that read
/// the startup lines and left), and a failed print must not turn a clean exit into a panic.
fn print_report(report: &weir::messages::ShutdownReport) {
    use std::io::Write as _;
    use weir_core::{ShutdownReady, ShutdownStatus};
    let line = match report.controlled {
        Some(ShutdownStatus::Ready {
            why,
            leaderships,
            waited_ms,
        }) => {
            let why = match why {
                ShutdownReady::Moved => "leaderships moved to other in-sync replicas",
                ShutdownReady::Alone => "no other live broker to hand leaderships to",
                ShutdownReady::TimedOut => "timed out waiting for the controller",
            };
            format!("weir controlled shutdown: {why} in {waited_ms} ms ({leaderships} still led)")
        }
        Some(status) => format!("weir controlled shutdown: {status:?}"),
        None => "weir shutdown: controlled shutdown disabled".to_owned(),
    };
    tracing::info!("{line}");
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    if let Some(error) = &report.flush_error {
        tracing::error!("final flush failed: {error}");
    }
}

/// SIGTERM and SIGINT (Ctrl-C), as one stream of names.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                result = tokio::signal::ctrl_c() => match result {
                    Ok(()) => "SIGINT",
                    Err(_) => std::future::pending().await,
                },
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }
}
