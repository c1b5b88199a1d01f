//! BUGGIFY: seeded fault points inside the broker that only a simulation turns on.
//!
//! FoundationDB's idea: the code under test itself takes rare-but-legal paths (a late
//! acknowledgement, a short read, an early segment roll) far more often than production
//! would, so the simulator explores the states clients and recovery must tolerate. Each
//! point is a legal behaviour of a correct broker — the clients and the checker must accept
//! it — never a bug.
//!
//! Invariants:
//! - Off by default ([`BuggifyConfig::OFF`]); a node built from a default config never
//!   fires a point and never draws a random number.
//! - Deterministic: every decision comes from the configured seed ([`crate::rng::Rng`]), in the
//!   order the node asks; no OS randomness, no globals, no `cfg(madsim)`.
//! - A point fires only for a seed and rate the simulator chose (`weir-sim` passes them in
//!   [`crate::NodeConfig::buggify`]).

use std::cell::RefCell;

use crate::rng::Rng;

/// Which fault points may fire, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuggifyConfig {
    /// Seed of the decision stream.
    pub seed: u64,
    /// Chance per consulted point, per thousand; 0 turns BUGGIFY off.
    pub per_mille: u32,
}

impl BuggifyConfig {
    /// BUGGIFY off (production).
    pub const OFF: BuggifyConfig = BuggifyConfig {
        seed: 0,
        per_mille: 0,
    };
}

impl Default for BuggifyConfig {
    fn default() -> Self {
        BuggifyConfig::OFF
    }
}

/// A fault point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// A durable produce (acks=1/all) or admin response is held back a little after its
    /// sync completed: the acknowledgement arrives late, after later events.
    DelayAck,
    /// A fetch partition's read plan is cut to one batch: clients must keep fetching.
    ShortFetch,
    /// The active segment rolls before it is full: more segment metadata, more producer
    /// snapshots, more recovery work.
    EarlyRoll,
    /// The log cleaner takes a compacted partition below its `min.cleanable.dirty.ratio`:
    /// more, smaller compaction jobs, running while the log changes under them.
    CompactEager,
    /// A compaction job's result is dropped on arrival, as a stale one is: the partition's
    /// next job redoes the work (the checkpoint did not move).
    CompactDrop,
}

/// Longest delay [`Point::DelayAck`] adds, in milliseconds.
pub const DELAY_ACK_MS_MAX: u64 = 300;

/// The decision stream (interior mutability: points are consulted from `&self` paths such
/// as fetch evaluation; the node is owned by one task, so a `RefCell` suffices).
#[derive(Debug, Clone)]
pub struct Buggify {
    per_mille: u32,
    rng: RefCell<Rng>,
}

impl Buggify {
    /// A stream for `config`.
    pub fn new(config: BuggifyConfig) -> Buggify {
        Buggify {
            per_mille: config.per_mille.min(1000),
            rng: RefCell::new(Rng::new(config.seed)),
        }
    }

    /// True when any point may fire.
    pub fn enabled(&self) -> bool {
        self.per_mille > 0
    }

    /// Should `point` misbehave now? Always false when off (and draws nothing then).
    pub fn fire(&self, point: Point) -> bool {
        if !self.enabled() {
            return false;
        }
        // Salt by point so that adding a point does not change how often the others fire.
        let salt = match point {
            Point::DelayAck => 1,
            Point::ShortFetch => 2,
            Point::EarlyRoll => 3,
            Point::CompactEager => 4,
            Point::CompactDrop => 5,
        };
        let fired = (self.next_u64() ^ salt) % 1000 < u64::from(self.per_mille);
        if fired {
            tracing::debug!(?point, "BUGGIFY fired");
        }
        fired
    }

    /// A number in `low..=high` from the same stream (0 draws when off: returns `low`).
    pub fn between(&self, low: u64, high: u64) -> u64 {
        if !self.enabled() {
            return low;
        }
        low + self.next_u64() % (high.saturating_sub(low) + 1)
    }

    fn next_u64(&self) -> u64 {
        self.rng.borrow_mut().next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: off means off, on is seeded and reproducible, the rate is roughly honoured.
    // Method: count firings over many draws for a few configurations.
    #[test]
    fn off_never_fires_and_on_is_reproducible() {
        let off = Buggify::new(BuggifyConfig::OFF);
        assert!((0..1000).all(|_| !off.fire(Point::DelayAck)));
        assert_eq!(off.between(5, 9), 5);
        let config = BuggifyConfig {
            seed: 42,
            per_mille: 100,
        };
        let draws =
            |b: &Buggify| -> Vec<bool> { (0..2000).map(|_| b.fire(Point::ShortFetch)).collect() };
        let first = draws(&Buggify::new(config));
        assert_eq!(first, draws(&Buggify::new(config)));
        let fired = first.iter().filter(|f| **f).count();
        assert!((100..300).contains(&fired), "fired {fired} of 2000 at 10%");
        let on = Buggify::new(config);
        assert!((0..100).all(|_| (3..=7).contains(&on.between(3, 7))));
    }
}
