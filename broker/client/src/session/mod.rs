//! The sans-IO half of the client: every decision, no IO.
//!
//! Nothing in this module reads a clock, touches a socket or spawns a task. Time comes in as
//! `now: Duration` (the runtime's monotonic time since its epoch), randomness from a seed,
//! and effects leave as return values the [`crate::driver`] applies. That makes batching,
//! linger, retry and correlation behaviour testable with injected time.

pub mod correlation;
pub mod fetch;
pub mod group;
pub mod metadata;
pub mod partitioner;
pub mod producer;
pub mod retry;
pub mod versions;
