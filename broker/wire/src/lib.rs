//! weir-wire: the only crate that speaks `kafka_protocol`.
pub mod domain;
pub mod error;
