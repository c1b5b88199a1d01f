//! weir-registry's integration tests as one test binary, a module per file: run one file's
//! tests with `cargo test -p weir-registry --test it compatibility::`. One binary links the
//! crate once instead of once per file.

mod compatibility;
mod data;
mod record_name;
mod replay;
