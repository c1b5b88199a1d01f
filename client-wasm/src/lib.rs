//! weir-wasm: Weir's client for browsers, edge runtimes and Node, compiled to WebAssembly.
//!
//! It speaks the edge protocol (`weir-edge`) to the broker's WebSocket gateway; the npm
//! package's `index.js` (client-wasm/js/) loads this module and adds what only JavaScript
//! can express (`for await` over a consumer).
//!
//! # Layout
//! - [`session`]: the socket, the edge handshake, request/response matching, reconnects
//!   with backoff.
//! - [`api`]: the JavaScript-facing classes: `Client`, `Producer`, `Consumer`, `Admin`.
//! - [`producer`]: the idempotent producer of edge protocol version 2 (client-held
//!   producer id and sequences, batches resent unchanged after a reconnect).
//! - [`convert`]: JS values <-> edge records, Kafka errors -> JS `Error`s named after them.
//!
//! # Architecture invariants
//! - Depends on `weir-edge` only (plus wasm-bindgen and js-sys): no Kafka code; the gateway
//!   does group membership and talks Kafka. With a version-2 gateway the client partitions
//!   (Kafka's murmur2, from `weir-edge`), batches and numbers idempotent records itself.
//! - An idempotent send resolves once; after a reconnect its unacknowledged batch is
//!   resent with the same producer id, epoch and sequence, so the broker writes it once.
//! - Every error a promise rejects with is a JS `Error` whose `name` is a Kafka error name
//!   (`UNKNOWN_TOPIC_OR_PARTITION`) or `NETWORK_EXCEPTION` for a lost connection.
//! - A consumer resumes after a reconnect from the position after the last record it
//!   yielded (records buffered but not yet yielded are fetched again).
//! - The WebSocket is whatever `options.WebSocket` gives, else the global `WebSocket`, so
//!   the same module runs in browsers, Node 22+ (or Node 20 with a WebSocket passed in or
//!   `--experimental-websocket`) and edge runtimes.

pub mod api;
pub mod convert;
pub mod producer;
pub mod session;

pub use api::{connect, Admin, Client, Consumer, Producer};
