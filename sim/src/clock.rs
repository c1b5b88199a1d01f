//! Wall-clock faults shared by both simulators: [`WallSkew`], an offset the harness can
//! jump (forwards or backwards, as an NTP step would), and [`Skewed`], a runtime wrapper
//! that adds it to any runtime's wall clock.
//!
//! Only `Runtime::wall_ms` (record timestamps, producer expiry) moves; the monotonic clock
//! (`Runtime::now`, timers) never goes backwards — that is the runtime seam's promise and
//! what production's clocks give. A forward jump of *both* clocks (a whole-machine stall)
//! is madsim's `time::advance`, used by `madsim.rs`.
//!
//! Invariant: the skew is shared by every runtime of a run (all hosts see one jump at the
//! same simulated instant), and starts at 0.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir_runtime::Runtime;

/// The wall clock's offset from simulated time, shared so the harness can make it jump.
#[derive(Debug, Clone, Default)]
pub struct WallSkew(Arc<AtomicI64>);

impl WallSkew {
    /// Move the wall clock by `delta_ms` (may go backwards, as NTP steps do).
    pub fn jump(&self, delta_ms: i64) {
        self.0.fetch_add(delta_ms, Ordering::Relaxed);
    }

    /// The current offset in milliseconds.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `inner` with [`WallSkew`] added to its wall clock; everything else is delegated.
#[derive(Debug, Clone)]
pub struct Skewed<R> {
    inner: R,
    skew: WallSkew,
}

impl<R: Runtime> Skewed<R> {
    /// Wrap `inner`.
    pub fn new(inner: R, skew: WallSkew) -> Skewed<R> {
        Skewed { inner, skew }
    }
}

impl<R: Runtime> Runtime for Skewed<R> {
    type Stream = R::Stream;
    type Listener = R::Listener;

    fn now(&self) -> Duration {
        self.inner.now()
    }

    fn wall_ms(&self) -> i64 {
        self.inner.wall_ms().saturating_add(self.skew.get())
    }

    fn sleep_until(&self, deadline: Duration) -> impl Future<Output = ()> + Send + 'static {
        self.inner.sleep_until(deadline)
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.spawn(future);
    }

    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>> + Send {
        self.inner.bind(addr)
    }

    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        self.inner.connect(addr)
    }

    fn offload<T, F>(&self, work: F) -> impl Future<Output = T> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.inner.offload(work)
    }

    fn rng_seed(&self) -> u64 {
        self.inner.rng_seed()
    }
}
