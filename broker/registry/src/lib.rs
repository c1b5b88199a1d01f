//! weir-registry: a schema registry with Confluent's REST API, without I/O of its own.
//!
//! - `format`: schema parsing, normalized text, identity and compatibility per format.
//! - `compat`: the seven compatibility levels over a format's reader/writer check.
//!
//! **Architecture invariants:** no sockets, files or clocks: the store changes only by
//! applying `_schemas` records in log order, and writes reach the log through the
//! `SchemaLog` trait the server implements; the same records replayed give the same store.

pub mod compat;
pub mod error;
pub mod format;

pub use error::RegistryError;
