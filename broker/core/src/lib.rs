//! weir-core: the sans-IO heart of the Weir broker.
//!
//! # Architecture invariants
//! - No IO, no clocks, no threads, no OS randomness: every handler takes `now`, effects leave
//!   as [`Output`] values that drivers apply in emission order.
//! - The state machines never see `kafka_protocol` types, only `weir_wire::domain`.
//! - An acks=1/all produce response is emitted only after the high watermark covers the
//!   batch; the high watermark only advances over synced appends when fsync-on-ack is on.
//! - Consumers never see records at or above the high watermark.
pub mod storage;
