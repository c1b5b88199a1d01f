//! weir-wire's integration tests as one test binary, a module per file: run one file's
//! tests with `cargo test -p weir-wire --test it codec_pins::`. One binary links the crate
//! once instead of once per file.

mod codec_behaviour;
mod codec_pins;
mod codec_roundtrip;
mod codec_roundtrip_acl;
mod codec_roundtrip_consumer_group;
mod codec_roundtrip_groups;
mod codec_roundtrip_sasl;
mod codec_roundtrip_txn;
mod decode_fuzz;
mod sasl_parsers;
