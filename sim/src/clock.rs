//! Wall-clock faults shared by both simulators: [`WallSkew`], an offset the harness can
//! jump (forwards or backwards, as an NTP step would), and [`Skewed`], a runtime wrapper
//! that adds it to any runtime's wall clock (and, if asked, gives blocking work a seeded
//! latency: [`Skewed::with_offload_latency`]).
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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use weir_runtime::Runtime;

use crate::seed::Rng;

/// Blocking work's simulated latency under [`Skewed::with_offload_latency`] (µs, seeded in
/// this range): what `TurmoilRuntime::offload` takes for an fsync.
pub const OFFLOAD_LATENCY_US: (u64, u64) = (100, 3_000);

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
    /// Draws each offload's latency; `None`: offload as `inner` does.
    offload_rng: Option<Arc<Mutex<Rng>>>,
}

impl<R: Runtime> Skewed<R> {
    /// Wrap `inner`.
    pub fn new(inner: R, skew: WallSkew) -> Skewed<R> {
        Skewed {
            inner,
            skew,
            offload_rng: None,
        }
    }

    /// Wrap `inner`; blocking work (an fsync) first waits a latency drawn from `rng` in
    /// [`OFFLOAD_LATENCY_US`], as under turmoil. madsim's `TokioRuntime` runs offloaded work
    /// in place, so without it a disk never holds unsynced writes at a moment the harness
    /// can crash the node.
    pub fn with_offload_latency(inner: R, skew: WallSkew, rng: Rng) -> Skewed<R> {
        Skewed {
            inner,
            skew,
            offload_rng: Some(Arc::new(Mutex::new(rng))),
        }
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
        let (low, high) = OFFLOAD_LATENCY_US;
        let latency = self.offload_rng.as_ref().map(|rng| {
            let micros = rng
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .between(low, high);
            Duration::from_micros(micros)
        });
        let inner = self.inner.clone();
        async move {
            if let Some(latency) = latency {
                inner.sleep_until(inner.now() + latency).await;
            }
            inner.offload(work).await
        }
    }

    fn rng_seed(&self) -> u64 {
        self.inner.rng_seed()
    }
}
