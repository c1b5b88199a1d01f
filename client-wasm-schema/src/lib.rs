//! weir-wasm-schema: schema-aware helpers for Weir's WASM client, a second, optional
//! WebAssembly module (npm package `weir-wasm-schema`, built into `pkg/` by
//! `cargo xtask wasm`), so pages that produce plain bytes do not download Avro.
//!
//! A `SchemaRegistry` talks to a Confluent-compatible schema registry over the host's
//! `fetch`, caches schemas by id and the latest id by subject, and frames values in
//! Confluent's wire format (magic byte 0, 4-byte big-endian schema id, payload), which the
//! broker's `confluent.value.schema.validation` checks and Confluent's deserializers read.
//!
//! # Layout
//! - [`wire`]: framing and TopicNameStrategy subjects.
//! - [`value`]: [`Js`], a JavaScript value as a Rust tree.
//! - [`avro`]: JS value <-> Avro datum under a schema, errors naming the field.
//! - [`json`]: JSON Schema subjects: the cheap checks done here (top-level type, required
//!   properties); full validation belongs to a JS validator (ajv).
//! - [`registry`]: the registry's HTTP answers parsed, the schema cache.
//! - [`api`]: the JavaScript-facing `SchemaRegistry` class and `topicSubject`.
//!
//! # Architecture invariants
//! - No dependency on the broker or on `weir-wasm`: it exchanges `Uint8Array`s with any
//!   client (the WASM client's `send` takes the framed bytes as a value).
//! - Everything but [`api`] is pure and runs natively (`cargo test -p weir-wasm-schema`).
//! - A value is converted against the schema before it is encoded: a value that does not
//!   fit rejects with the path of the field (`$.address.zip`), nothing is framed.

pub mod api;
pub mod avro;
pub mod json;
pub mod registry;
pub mod value;
pub mod wire;

pub use value::Js;

/// Why a helper refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchemaError {
    /// The value does not fit the schema at `path`.
    #[error("{path}: {reason}")]
    Mismatch {
        /// Where in the value (`$`, `$.field`, `$.list[2]`).
        path: String,
        /// What was expected and what was found.
        reason: String,
    },
    /// The bytes are not a framed value.
    #[error("not a framed value: {0}")]
    Frame(String),
    /// The schema could not be used.
    #[error("schema: {0}")]
    Schema(String),
    /// The payload could not be decoded with its schema.
    #[error("decoding: {0}")]
    Decode(String),
    /// The registry's answer was not understood.
    #[error("registry: {0}")]
    Registry(String),
}
