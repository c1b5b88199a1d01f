//! The async half of the client, generic over `R:` [`weir_runtime::Runtime`] so the same code
//! runs on tokio in production and inside the simulators.
//!
//! - [`connection`]: one TCP connection to one broker — ApiVersions handshake, then a writer
//!   task and a reader task so requests pipeline and responses are matched by correlation id.
//! - [`cluster`]: bootstrap, the metadata cache refresh, one connection per broker, and the
//!   ListOffsets fan-out shared by the consumer and the admin client.
//! - [`coordinator`]: FindCoordinator and requests to a group's coordinator.

pub mod cluster;
pub mod connection;
pub mod coordinator;

use std::future::Future;
use std::time::Duration;

use weir_runtime::Runtime;

/// Runs `future` until `deadline` (runtime time); `None` if the deadline came first.
pub async fn with_deadline<R: Runtime, F: Future>(
    runtime: &R,
    deadline: Duration,
    future: F,
) -> Option<F::Output> {
    tokio::select! {
        biased;
        output = future => Some(output),
        () = runtime.sleep_until(deadline) => None,
    }
}

/// Sleeps until `deadline`, or forever when `None`.
pub async fn sleep_until_opt<R: Runtime>(runtime: &R, deadline: Option<Duration>) {
    match deadline {
        Some(deadline) => runtime.sleep_until(deadline).await,
        None => std::future::pending::<()>().await,
    }
}

/// Milliseconds of a duration, saturating (for error messages and i32 wire fields).
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds of a duration as a wire `i32`, saturating.
pub fn millis_i32(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
