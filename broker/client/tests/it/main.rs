//! weir-client's end-to-end tests as one test binary, a module per file: run one file's
//! tests with `cargo test -p weir-client --test it txn_e2e::`. One binary links the crate
//! once instead of once per file.

mod common;
mod e2e;
mod group_e2e;
mod idempotence_e2e;
mod txn_e2e;
