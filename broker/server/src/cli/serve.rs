//! `weir serve`: run a broker until it is stopped or its storage fails.

use anyhow::Context;
use weir::config::{ServeArgs, ServerConfig};
use weir_runtime::TokioRuntime;

/// Run the broker. Returns an error (the process exits 1) on a bad config, a failed bind
/// or recovery, or a poisoned node.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServerConfig::from_args(&args)?;
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
    tokio::select! {
        biased;
        result = server.wait() => result.context("weir stopped")?,
        signal = tokio::signal::ctrl_c() => {
            signal.context("cannot listen for Ctrl-C")?;
            tracing::info!("interrupted; shutting down");
        }
    }
    Ok(())
}
