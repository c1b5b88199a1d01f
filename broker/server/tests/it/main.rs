//! The server's integration tests as one test binary, a module per file: run one file's
//! tests with `cargo test -p weir --test it tls::`. One binary links the crate once; a binary
//! per file took 24 links and 4.6 GB of disk (CI's machine ran out of it).

mod common;
mod remote_common;

mod acl_cli;
mod bad_input;
mod client_tls;
mod cluster_cli;
mod config_refusal;
mod features_cli;
mod gateway_eos;
mod gateway_sasl;
mod group_cli;
mod kill9_persistence;
mod poison;
mod quorum_cli;
mod remote_s3;
mod remote_store;
mod sasl;
mod schema_cli;
mod schema_registry;
mod serve_smoke;
mod shards;
mod shutdown_health;
mod storage_conformance;
mod storage_fjall;
mod tls;
mod tls_cluster;
mod txn_cli;
