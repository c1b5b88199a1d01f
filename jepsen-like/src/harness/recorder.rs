//! Recording the history of a real run.
//!
//! Every event is stamped with `CLOCK_MONOTONIC` in nanoseconds — the same clock Python's
//! `time.monotonic_ns()` reads — so events of the Rust actors and of the librdkafka client
//! subprocess can be merged into one real-time order. Brokers' clocks never enter it.
//!
//! Invariants: a Rust event is stamped while the recorder's lock is held, so the recorder's
//! order is its time order; external events keep the order they were emitted in;
//! [`Recorder::finish`] sorts stably by time, so each process's events keep their order
//! (a process's events are sequential and their stamps non-decreasing).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::{Event, Header, History, Kind, Phase, Process, Value, F};

/// Process ids at or above this are handed to the Python client.
pub const EXTERNAL_PROCESS_BASE: u64 = 1_000_000;
/// Values at or above this are written by the Python client (Rust actors count from 1).
pub const EXTERNAL_VALUE_BASE: u64 = 1_000_000_000_000;

/// `CLOCK_MONOTONIC` now, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    seconds * 1_000_000_000 + nanos
}

/// Shared, cheap to clone; all clones append to one history.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    events: Mutex<Vec<Event>>,
    next_process: AtomicU64,
}

impl Recorder {
    fn events(&self) -> MutexGuard<'_, Vec<Event>> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh client process id (never reused).
    pub fn process(&self) -> u64 {
        self.inner.next_process.fetch_add(1, Ordering::SeqCst)
    }

    /// Records `event`, stamping its time now.
    pub fn record(&self, mut event: Event) {
        let mut events = self.events();
        event.time = Some(monotonic_ns());
        events.push(event);
    }

    /// Records a client event built from its parts.
    pub fn client(&self, process: u64, kind: Kind, f: F, value: Value, phase: Phase) {
        let mut event = Event::new(process, kind, f, value);
        event.phase = phase;
        self.record(event);
    }

    /// Records a client completion with an error text.
    pub fn client_error(
        &self,
        process: u64,
        kind: Kind,
        f: F,
        value: Value,
        phase: Phase,
        error: String,
    ) {
        let mut event = Event::new(process, kind, f, value);
        event.phase = phase;
        event.error = Some(error);
        self.record(event);
    }

    /// Records a nemesis event (`process: "nemesis"`, `type: info`).
    pub fn nemesis(&self, f: &str, value: serde_json::Value) {
        let mut event = Event::new(0, Kind::Info, F::Other(f.to_owned()), Value::Other(value));
        event.process = Process::Named("nemesis".to_owned());
        self.record(event);
    }

    /// Appends an event that carries its own time (from the Python client).
    pub fn external(&self, event: Event) {
        self.events().push(event);
    }

    /// Events recorded so far (a copy).
    pub fn snapshot(&self) -> Vec<Event> {
        self.events().clone()
    }

    /// The history: every event, stably sorted by time, under `header`.
    pub fn finish(&self, header: Header) -> History {
        let mut events = self.snapshot();
        events.sort_by_key(|event| event.time.unwrap_or(0));
        History {
            header: Some(header),
            events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mop;

    // Goal: external events (their own stamps) merge into time order without reordering
    // any process. Method: interleave stamped events and check the merged order.
    #[test]
    fn merges_by_time() {
        let recorder = Recorder::default();
        let process = recorder.process();
        recorder.client(
            process,
            Kind::Invoke,
            F::Send,
            Value::Mops(vec![Mop::send(0, 1)]),
            Phase::Main,
        );
        let mut outside = Event::new(
            EXTERNAL_PROCESS_BASE,
            Kind::Invoke,
            F::Poll,
            Value::Mops(vec![Mop::poll()]),
        );
        outside.time = Some(1);
        recorder.external(outside);
        recorder.client(
            process,
            Kind::Ok,
            F::Send,
            Value::Mops(vec![Mop::sent(0, 0, 1)]),
            Phase::Main,
        );
        let history = recorder.finish(Header::default());
        let processes: Vec<Process> = history.events.iter().map(|e| e.process.clone()).collect();
        assert_eq!(
            processes,
            vec![
                Process::Client(EXTERNAL_PROCESS_BASE),
                Process::Client(process),
                Process::Client(process)
            ]
        );
        assert_eq!(history.events[1].kind, Kind::Invoke);
        assert!(monotonic_ns() > 1);
    }
}
