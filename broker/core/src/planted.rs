//! Planted bugs: deliberate faults that prove the simulation catches what it claims to.
//!
//! `weir-sim`'s planted-bug suite (`cargo xtask sim --planted`) switches one of these on at
//! a time and must find a failing seed for each; docs/simulation.md lists what each breaks
//! and where it is caught.
//!
//! Invariants:
//! - Without the cargo feature `planted` (every real build) [`on`] is a constant `false`, so
//!   each planted branch is dead code the compiler removes; only weir-sim enables the feature.
//! - With it, one build holds every bug and [`activate`] chooses which one runs, once, before
//!   any node exists: one simulator build serves the whole suite instead of one per bug.
//!   The choice is a process-wide constant for the run, so determinism holds (the same seed
//!   and bug replay the same trace), and it is the only global state in this crate.

/// A planted bug. Its [`Bug::name`] is what `--planted-bug` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Bug {
    /// Answer a produce before its data is durable.
    AckBeforeSync = 1,
    /// Forget the last stored batch at recovery, so its offsets are assigned again.
    OffsetReuse,
    /// Skip the CRC check of stored batches.
    SkipCrc,
    /// Append a retried idempotent batch again instead of answering its first offsets.
    SkipDedup,
    /// Recover with an empty producer table and accept any sequence from unknown producers.
    SkipSeqAfterRestart,
    /// read_committed fetches bounded by the high watermark, not the last stable offset.
    ExposeAboveLso,
    /// Accept batches of a fenced (older) producer epoch.
    AcceptFencedEpoch,
    /// Keep a group's generation across a rebalance, so two members own one partition.
    GroupDoubleAssign,
    /// Answer an offset commit without writing it to `__consumer_offsets`.
    LoseOffsetCommit,
    /// Advance the high watermark before the ISR has the records.
    HwBeforeIsr,
    /// Keep a divergent log suffix after a leader change.
    SkipTruncation,
    /// Elect any live replica, in the ISR or not.
    ElectOutsideIsr,
    /// Controller decisions from the committed image only, broker-side guards off.
    StaleDecisions,
    /// Compaction removes each key's latest record too.
    CompactLatest,
    /// Compaction ignores the last stable offset and high watermark.
    CompactPastLso,
    /// Tiered retention deletes local data whose upload is not confirmed yet.
    TierDeleteUnconfirmed,
    /// The authorizer lets an ALLOW outweigh a DENY.
    AclAllowWins,
    /// An abort marker commits a transaction's pending offsets, like a commit marker.
    AbortCommitsOffsets,
}

impl Bug {
    /// Every planted bug, in the suite's order.
    pub const ALL: [Bug; 18] = [
        Bug::AckBeforeSync,
        Bug::OffsetReuse,
        Bug::SkipCrc,
        Bug::SkipDedup,
        Bug::SkipSeqAfterRestart,
        Bug::ExposeAboveLso,
        Bug::AcceptFencedEpoch,
        Bug::GroupDoubleAssign,
        Bug::LoseOffsetCommit,
        Bug::HwBeforeIsr,
        Bug::SkipTruncation,
        Bug::ElectOutsideIsr,
        Bug::StaleDecisions,
        Bug::CompactLatest,
        Bug::CompactPastLso,
        Bug::TierDeleteUnconfirmed,
        Bug::AclAllowWins,
        Bug::AbortCommitsOffsets,
    ];

    /// The bug's name (`planted-...`, as the suite and replay commands print it).
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeSync => "planted-ack-before-sync",
            Bug::OffsetReuse => "planted-offset-reuse",
            Bug::SkipCrc => "planted-skip-crc",
            Bug::SkipDedup => "planted-skip-dedup",
            Bug::SkipSeqAfterRestart => "planted-skip-seq-after-restart",
            Bug::ExposeAboveLso => "planted-expose-above-lso",
            Bug::AcceptFencedEpoch => "planted-accept-fenced-epoch",
            Bug::GroupDoubleAssign => "planted-group-double-assign",
            Bug::LoseOffsetCommit => "planted-lose-offset-commit",
            Bug::HwBeforeIsr => "planted-hw-before-isr",
            Bug::SkipTruncation => "planted-skip-truncation",
            Bug::ElectOutsideIsr => "planted-elect-outside-isr",
            Bug::StaleDecisions => "planted-stale-decisions",
            Bug::CompactLatest => "planted-compact-latest",
            Bug::CompactPastLso => "planted-compact-past-lso",
            Bug::TierDeleteUnconfirmed => "planted-tier-delete-unconfirmed",
            Bug::AclAllowWins => "planted-acl-allow-wins",
            Bug::AbortCommitsOffsets => "planted-abort-commits-offsets",
        }
    }

    /// The bug named `name`.
    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|bug| bug.name() == name)
    }
}

#[cfg(feature = "planted")]
static ACTIVE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Whether `bug` is the planted bug of this run (always `false` in a real build).
#[inline(always)]
pub fn on(bug: Bug) -> bool {
    #[cfg(feature = "planted")]
    {
        ACTIVE.load(std::sync::atomic::Ordering::Relaxed) == bug as u8
    }
    #[cfg(not(feature = "planted"))]
    {
        let _ = bug;
        false
    }
}

/// The planted bug of this run, if any.
pub fn active() -> Option<Bug> {
    Bug::ALL.into_iter().find(|bug| on(*bug))
}

/// Switches `bug` on for the rest of the process (or every bug off with `None`). Call it
/// once, before any node exists.
#[cfg(feature = "planted")]
pub fn activate(bug: Option<Bug>) {
    let value = bug.map_or(0, |bug| bug as u8);
    ACTIVE.store(value, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(all(test, feature = "planted"))]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_activation_selects_one_bug() {
        for bug in Bug::ALL {
            assert_eq!(Bug::from_name(bug.name()), Some(bug));
        }
        activate(Some(Bug::SkipCrc));
        assert!(on(Bug::SkipCrc) && !on(Bug::SkipDedup));
        assert_eq!(active(), Some(Bug::SkipCrc));
        activate(None);
        assert_eq!(active(), None);
    }
}
