//! weir: the Weir broker's production wiring — async drivers around the sans-IO core.
//!
//! # Layout
//! - [`config`]: `weir serve` flags and the TOML file with Kafka property names.
//! - [`server`]: bind, recover, run; [`server::start`] works over any storage driver.
//! - [`node_loop`]: the single task owning `weir_core::Node`; group commit.
//! - [`messages`]: what the node loop and the tasks around it send each other.
//! - [`listener`]: Kafka listeners (name, security protocol, address) and per-listener
//!   advertised endpoints.
//! - [`tls`]: TLS for the listeners, the gateway and `/metrics` (rustls, PEM, reload).
//! - [`sasl`]: SASL authentication of a connection (PLAIN, SCRAM-SHA-256/512, KIP-368).
//! - [`conn`]: per-connection reader and writer tasks; ordered, bounded, CRC-checked.
//! - [`peer`]: cluster mode's node-to-node transport over the controller listener.
//! - [`metrics`]: `GET /metrics` in Prometheus text format (kafka_exporter's names).
//! - [`gateway`]: the WebSocket gateway for the WASM client (edge protocol, `weir-edge`).
//! - [`rest`]: the REST proxy (Confluent's REST API v3/v2) over the gateway's router.
//! - [`remote`]: tiered storage's object store (uploads, deletes, sweeps, remote reads).
//! - [`storage`]: the [`storage::StorageDriver`] seam and `FjallStorage` (feature `fjall`).
//!
//! The binary (`src/main.rs`, `src/cli/`) is the only place using `anyhow` and
//! `tracing-subscriber`.
//!
//! # Architecture invariants
//! - Drivers are generic over `weir_runtime::Runtime`: the same code runs on tokio and in the
//!   simulators. Every `select!` is `biased`.
//! - Only the node loop touches the `Node`; connection tasks talk to it over channels.
//! - Storage reads for fetches run on connection tasks, never in the node loop.
//! - Nothing is acknowledged after a storage failure: the node poisons and the process
//!   exits non-zero.
pub mod config;
pub mod conn;
pub mod gateway;
pub mod http;
pub mod limits;
pub mod listener;
pub mod messages;
pub mod metrics;
pub mod node_loop;
pub mod peer;
pub mod registry;
pub mod remote;
pub mod rest;
pub mod sasl;
pub mod server;
pub mod shards;
pub mod ssl_principal;
pub mod storage;
pub mod tls;
