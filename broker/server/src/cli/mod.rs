//! `weir` subcommands, one module each. The binary's `Command` enum in `main.rs` dispatches
//! here; these modules may use `anyhow` (they belong to the binary, not the library).
pub mod serve;
// Client-side subcommands (weir-client over TokioRuntime), owned by the client crate's author.
pub mod acl;
pub mod bench;
pub mod cluster;
pub mod command_config;
pub mod consume;
pub mod features;
pub mod group;
pub mod produce;
pub mod schema;
pub mod topic;
pub mod txn;
pub mod user;
