//! Recording a run as a Jepsen-style history (weir-jepsen's format), plus violations the
//! harness sees directly (a corrupt batch served, a broker that cannot recover).
//!
//! Invariants: events are appended in the order the simulation observed them, stamped with
//! simulated time; a process has at most one outstanding op; a process that saw an `info`
//! completion is retired (the next op of that actor uses a fresh id).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use weir_jepsen::{Event, History, Kind, Phase, Value, F};

#[derive(Debug, Default)]
struct Log {
    events: Vec<Event>,
    next_process: u64,
    violations: Vec<String>,
}

/// Shared recorder; clones append to one history.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    log: Arc<Mutex<Log>>,
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh process id.
    pub fn process(&self) -> u64 {
        let mut log = self.lock();
        log.next_process += 1;
        log.next_process - 1
    }

    /// Record one event.
    #[allow(clippy::too_many_arguments)] // one flat call per event keeps the actors readable
    pub fn event(
        &self,
        process: u64,
        kind: Kind,
        f: F,
        value: Value,
        time_ns: u64,
        phase: Phase,
        error: Option<String>,
        seek_to_beginning: bool,
    ) {
        let mut event = Event::new(process, kind, f, value);
        event.time = Some(time_ns);
        event.phase = phase;
        event.error = error;
        event.seek_to_beginning = seek_to_beginning;
        self.lock().events.push(event);
    }

    /// Record a fully built event (group polls carry `rebalance_log` and `committed`).
    pub fn push(&self, event: Event) {
        self.lock().events.push(event);
    }

    /// A safety violation seen by the harness itself (not by the checker).
    pub fn violation(&self, what: impl Into<String>) {
        self.lock().violations.push(what.into());
    }

    /// Violations so far.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// The history so far (without header).
    pub fn history(&self) -> History {
        History {
            header: None,
            events: self.lock().events.clone(),
        }
    }
}
