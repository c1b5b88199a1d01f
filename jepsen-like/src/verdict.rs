//! The verdict matrix (§6.5 of `jepsen-checker.md`): which anomalies are bad under which
//! producer/consumer settings, and when a history says too little to judge (`Unknown`).
//!
//! Invariant: this is the only place that knows the matrix; checks report everything they
//! see and the verdict decides. An anomaly is judged on its own (`Anomaly::bad`), so
//! per-process context such as "this consumer was subscribed" can matter.

use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::config::{Acks, CheckConfig, Isolation, SubVia};

/// Outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Some bad anomaly was found.
    Invalid,
    /// Nothing bad, but the history is too thin to vouch for the system.
    Unknown,
    /// Nothing bad and the history exercised every operation.
    Valid,
}

/// Whether `anomaly` violates a guarantee the config promised.
pub fn is_bad(config: &CheckConfig, anomaly: &Anomaly) -> bool {
    use AnomalyKind as K;
    let read_uncommitted_txn = config.txn && config.isolation == Isolation::ReadUncommitted;
    match anomaly.kind {
        K::InconsistentOffsets | K::LostWrite | K::Unseen | K::RealtimeNonmonotonicSend => {
            config.acks == Acks::All
        }
        K::TornTxn => config.acks == Acks::All && config.txn,
        K::UnseenUnknown => false,
        K::Duplicate => config.idempotence || config.txn,
        K::NonmonotonicSend | K::IntNonmonotonicSend => config.acks != Acks::Zero,
        K::IntPollSkip | K::IntNonmonotonicPoll => true,
        K::PollSkip | K::NonmonotonicPoll => match config.sub_via {
            SubVia::Assign => true,
            SubVia::Subscribe => false,
            SubVia::Both => anomaly.subscribed != Some(true),
        },
        K::GroupGap => config.sub_via != SubVia::Assign,
        K::GroupDuplicate => config.eos_strict && config.txn,
        K::G1a | K::G1c | K::G1cRealtime | K::SccWithoutCycle => !read_uncommitted_txn,
        K::PrecommittedRead => config.txn && config.isolation == Isolation::ReadCommitted,
        K::FutureRead | K::UnexpectedValue => true,
        K::G0 | K::G0Realtime | K::G1cWw | K::G1cWwRealtime | K::IntSendSkip => false,
        K::SccWithoutCycleWw => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: spot-check the matrix rows that differ by config (§6.5).
    #[test]
    fn matrix_rows() {
        let anomaly = |kind| Anomaly::new(kind, String::new());
        let mut config = CheckConfig::default();
        assert!(is_bad(&config, &anomaly(AnomalyKind::LostWrite)));
        assert!(!is_bad(&config, &anomaly(AnomalyKind::Duplicate)));
        config.idempotence = true;
        assert!(is_bad(&config, &anomaly(AnomalyKind::Duplicate)));
        config.acks = Acks::One;
        assert!(!is_bad(&config, &anomaly(AnomalyKind::LostWrite)));
        assert!(is_bad(&config, &anomaly(AnomalyKind::NonmonotonicSend)));
        config.acks = Acks::Zero;
        assert!(!is_bad(&config, &anomaly(AnomalyKind::NonmonotonicSend)));
        config.sub_via = SubVia::Both;
        let mut skip = anomaly(AnomalyKind::PollSkip);
        assert!(is_bad(&config, &skip));
        skip.subscribed = Some(true);
        assert!(!is_bad(&config, &skip));
        config.txn = true;
        config.isolation = Isolation::ReadUncommitted;
        assert!(!is_bad(&config, &anomaly(AnomalyKind::G1c)));
        assert!(!is_bad(&config, &anomaly(AnomalyKind::PrecommittedRead)));
        assert!(is_bad(&config, &anomaly(AnomalyKind::FutureRead)));
    }
}
