//! weir-registry: a schema registry with Confluent's REST API, without I/O of its own.
//!
//! - `format`: schema parsing, normalized text, identity and compatibility per format.
//! - `compat`: the seven compatibility levels over a format's reader/writer check.
//! - `record`: `_schemas` keys and values (Confluent's layout); `store`: the state built by
//!   applying them in log order; `ops`: writes as pure plans over the store.
//! - `log`: the `SchemaLog` seam the server implements; `api`: Confluent's REST API as an
//!   axum Router over it.
//! - `wire`: Confluent's wire format of a record key/value (magic, schema id, Protobuf's
//!   message indexes, payload); `format::ParsedSchema::{encode_json, decode_json}` convert
//!   JSON data to and from each format's binary encoding.
//!
//! **Architecture invariants:** no sockets, files or clocks: the store changes only by
//! applying `_schemas` records in log order, and writes reach the log through the
//! `SchemaLog` trait the server implements; the same records replayed give the same store.

pub mod api;
pub mod compat;
pub mod error;
pub mod format;
pub mod log;
pub mod ops;
pub mod record;
pub mod store;
pub mod wire;

pub use error::RegistryError;
pub use log::SchemaLog;
