//! weir-core: the sans-IO heart of the Weir broker.
//!
//! # Architecture invariants
//! - No IO, no clocks, no threads, no OS randomness: every handler takes `now`, effects leave
//!   as [`Output`] values that drivers apply in emission order.
//! - The state machines never see `kafka_protocol` types, only `weir_wire::domain`.
//! - An acks=1/all produce response is emitted only after the high watermark covers the
//!   batch; the high watermark only advances over synced appends.
//! - Consumers never see records at or above the high watermark.
//! - Every queue and map has a named bound (`*_MAX`), checked on insert.
//! - With an authorizer configured, every client or forwarded request passes Kafka's
//!   per-API checks (`node/authz.rs`) before any handler sees it; only the broker's own
//!   writes (`Origin::GroupWrite`) skip them.
//!
//! # Code map
//! - [`node`]: [`Node`], composing everything below; one file per API family.
//! - [`acl`]: Kafka's ACLs and the authorizer's decision (StandardAuthorizer semantics).
//! - [`group`]: the group coordinator (classic consumer groups) and the record format of
//!   committed offsets in `__consumer_offsets`.
//! - [`compaction`]: Kafka's log cleaner rules over v2 batches (offset map, cleaning pass).
//! - `partition`: one partition's offsets, logical segments and unsynced appends.
//! - `producer_state`: idempotent producers' epochs and sequences per partition.
//! - `purgatory`: parked requests ordered by deadline.
//! - `meta`: the metadata key layout persisted through storage.
//! - [`storage`]: the storage contract, [`storage::MemStorage`] and the conformance suite.
//! - [`topic`], [`topic_config`], [`config`]: names, ids and configuration.
//! - [`resolve`]: what every driver does to a response before encoding it.
//! - [`buggify`]: seeded fault points that only a simulation turns on.
//! - [`rng`]: the seeded random stream every subsystem forks its own from.
//! - [`shard`]: which of its broker's node loops holds a partition (docs/sharding.md).
//! - [`testing`]: batch builders, a single-node harness for tests and simulations, and a
//!   harness of one broker's shards (`ShardedBroker`).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

pub mod acl;
pub mod buggify;
pub mod cleaner;
pub mod cluster;
pub mod compaction;
pub mod config;
mod event;
pub mod group;
mod meta;
pub mod node;
mod partition;
pub mod planted;
mod producer_state;
mod purgatory;
pub mod raft;
pub mod resolve;
pub mod rng;
pub mod schema_check;
pub mod shard;
pub mod storage;
pub mod testing;
pub mod tier;
pub mod time;
pub mod topic;
pub mod topic_config;
mod txn;
mod txn_log;

pub use config::{Durability, NodeConfig};
pub use event::{Completion, Origin, Output, Principal, RequestId, SyncMode};
pub use node::{Node, Readiness, ShutdownReady, ShutdownStatus};
pub use time::{Instant, Now};
