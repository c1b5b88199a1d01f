//! Bounds on what Kafka clients can make the broker hold, shared by every listener: open
//! connections (`max.connections`), requests read but not yet answered
//! (`queued.max.requests`) and their bytes (`queued.max.request.bytes`), with their current
//! use for `/metrics`.
//!
//! Invariants:
//! - A connection over `max.connections` is closed at accept, before any byte is read; the
//!   count drops when the connection's reader and writer have both ended ([`ConnSlot`]).
//! - A request's frame is read only after it was admitted ([`ClientLimits::admit`]): when
//!   the broker holds `queued.max.requests` requests or `queued.max.request.bytes` bytes of
//!   them, readers stop reading (TCP backpressure) until responses are written. A request's
//!   admission ([`Admitted`]) is released when its response is written or its connection
//!   ends, whichever comes first, so a dead connection never keeps budget.
//! - One frame never needs more than the whole byte budget (it is charged at most that),
//!   so a frame within `socket.request.max.bytes` is never refused for good.
//! - Per connection, [`crate::conn::IN_FLIGHT_MAX`] still bounds unanswered requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default `max.connections` (Kafka: unbounded). Each connection costs two tasks and a read
/// buffer of at least 64 KiB, so the default keeps idle connections under about 1 GiB.
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;
/// Default `queued.max.requests` (Kafka's default).
pub const QUEUED_REQUESTS_DEFAULT: usize = 500;
/// Default `queued.max.request.bytes` (Kafka: unbounded): five maximum-size produce
/// requests of the default `socket.request.max.bytes` (100 MiB).
pub const QUEUED_REQUEST_BYTES_DEFAULT: usize = 512 * 1024 * 1024;
/// The byte budget's unit: permits count KiB, so any budget fits a semaphore's `u32` asks.
const UNIT: usize = 1024;

/// The configured bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    /// `max.connections`.
    pub connections_max: usize,
    /// `queued.max.requests`.
    pub queued_requests_max: usize,
    /// `queued.max.request.bytes`.
    pub queued_request_bytes_max: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            connections_max: CONNECTIONS_MAX_DEFAULT,
            queued_requests_max: QUEUED_REQUESTS_DEFAULT,
            queued_request_bytes_max: QUEUED_REQUEST_BYTES_DEFAULT,
        }
    }
}

/// The shared bounds and their use.
#[derive(Debug)]
pub struct ClientLimits {
    settings: LimitSettings,
    connections: AtomicUsize,
    requests: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    byte_units: usize,
}

/// One open connection's place under `max.connections`; dropping it frees the place.
#[derive(Debug)]
pub struct ConnSlot {
    limits: Arc<ClientLimits>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.limits.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One admitted request's share of the budgets; dropping it gives the share back.
#[derive(Debug)]
pub struct Admitted {
    _request: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// The limits were closed (never, while the broker runs).
#[derive(Debug)]
pub struct Closed;

/// What `/metrics` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitUse {
    /// The bounds.
    pub settings: LimitSettings,
    /// Open Kafka connections.
    pub connections: usize,
    /// Requests read and not yet answered.
    pub queued_requests: usize,
    /// Bytes of those requests (rounded up to KiB per request).
    pub queued_request_bytes: usize,
}

impl ClientLimits {
    /// Limits with these settings (each at least 1).
    pub fn new(settings: LimitSettings) -> Arc<ClientLimits> {
        let settings = LimitSettings {
            connections_max: settings.connections_max.max(1),
            queued_requests_max: settings.queued_requests_max.max(1),
            queued_request_bytes_max: settings.queued_request_bytes_max.max(UNIT),
        };
        let byte_units = (settings.queued_request_bytes_max / UNIT).min(Semaphore::MAX_PERMITS);
        Arc::new(ClientLimits {
            settings,
            connections: AtomicUsize::new(0),
            requests: Arc::new(Semaphore::new(settings.queued_requests_max)),
            bytes: Arc::new(Semaphore::new(byte_units)),
            byte_units,
        })
    }

    /// A place for a new connection, or `None` when `max.connections` are open.
    pub fn try_connect(self: &Arc<Self>) -> Option<ConnSlot> {
        let max = self.settings.connections_max;
        let taken = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        taken.ok().map(|_| ConnSlot {
            limits: Arc::clone(self),
        })
    }

    /// Waits until a request of `frame_bytes` fits both budgets, and takes its share.
    pub async fn admit(&self, frame_bytes: usize) -> Result<Admitted, Closed> {
        let units = frame_bytes.div_ceil(UNIT).clamp(1, self.byte_units);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let request = Arc::clone(&self.requests).acquire_owned().await;
        let request = request.map_err(|_| Closed)?;
        let bytes = Arc::clone(&self.bytes).acquire_many_owned(units).await;
        let bytes = bytes.map_err(|_| Closed)?;
        Ok(Admitted {
            _request: request,
            _bytes: bytes,
        })
    }

    /// The bounds and their current use.
    pub fn usage(&self) -> LimitUse {
        let free_units = self.bytes.available_permits();
        LimitUse {
            settings: self.settings,
            connections: self.connections.load(Ordering::Acquire),
            queued_requests: self.settings.queued_requests_max - self.requests.available_permits(),
            queued_request_bytes: (self.byte_units - free_units) * UNIT,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn limits(connections: usize, requests: usize, bytes: usize) -> Arc<ClientLimits> {
        ClientLimits::new(LimitSettings {
            connections_max: connections,
            queued_requests_max: requests,
            queued_request_bytes_max: bytes,
        })
    }

    // Goal: max.connections refuses the connection over the bound and frees the place when
    // a connection's slot drops.
    #[test]
    fn connections_are_bounded_and_released() {
        let limits = limits(2, 10, 1 << 20);
        let first = limits.try_connect().expect("first");
        let _second = limits.try_connect().expect("second");
        assert!(limits.try_connect().is_none());
        assert_eq!(limits.usage().connections, 2);
        drop(first);
        assert!(limits.try_connect().is_some());
    }

    // Goal: requests wait while either budget is spent and proceed when an admission is
    // dropped; a frame larger than the whole byte budget still gets in alone.
    #[tokio::test]
    async fn requests_wait_for_both_budgets() {
        let limits = limits(10, 2, 64 * 1024);
        let one = limits.admit(1000).await.expect("one");
        let two = limits.admit(1000).await.expect("two");
        let usage = limits.usage();
        assert_eq!(
            (usage.queued_requests, usage.queued_request_bytes),
            (2, 2048)
        );
        let third = limits.admit(10);
        tokio::pin!(third);
        assert!(
            third.as_mut().now_or_never().is_none(),
            "over queued.max.requests"
        );
        drop(one);
        let third = third.await.expect("third");
        drop((two, third));
        let huge = limits
            .admit(10 << 20)
            .await
            .expect("a frame over the budget, alone");
        let small = limits.admit(10);
        tokio::pin!(small);
        assert!(
            small.as_mut().now_or_never().is_none(),
            "over queued.max.request.bytes"
        );
        drop(huge);
        small.await.expect("after the big one");
        assert_eq!(limits.usage().queued_requests, 0);
    }
}
