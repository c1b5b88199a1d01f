//! weir-core's integration tests as one test binary, a module per file: run one file's
//! tests with `cargo test -p weir-core --test it raft::`. One binary links the crate once
//! instead of once per file (28 links, 1.7 GB of disk).

mod common;

mod acl;
mod admin;
mod buggify;
mod cluster_acl;
mod cluster_compaction;
mod cluster_exactly_once;
mod cluster_failover;
mod cluster_features;
mod cluster_producer_ids;
mod cluster_readiness;
mod cluster_remote_log;
mod cluster_scram;
mod cluster_shutdown;
mod cluster_tiered;
mod cluster_voters;
mod compaction;
mod consumer_groups;
mod delete_records;
mod durability;
mod groups;
mod idempotence;
mod log_dirs;
mod one_voter;
mod produce_fetch;
mod proptest_invariants;
mod raft;
mod schema_validation;
mod shards;
mod tiered;
mod transactions;
mod txn_durability;
