//! Anomaly taxonomy (§1 of `jepsen-checker.md`) and the record each check emits.
//!
//! Names are Jepsen's (`lost-write`, `G1c`, ...) plus our extensions (§1.3). Whether an
//! anomaly is *bad* depends on the config and is decided by [`crate::verdict`]; the checks
//! only describe what they saw. Anomalies have a total order so reports are deterministic.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::history::{Key, Offset, Val};

/// Every anomaly type the checker can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyKind {
    /// One (key, offset) holds two or more values.
    InconsistentOffsets,
    /// One value at two or more offsets of a key.
    Duplicate,
    /// A committed write below the highest observed position was never read.
    LostWrite,
    /// A committed write never read by the end of the test (key caught up).
    Unseen,
    /// A committed write never read, but the final reads of its key did not catch up.
    UnseenUnknown,
    /// A committed txn some of whose writes were read and others never.
    TornTxn,
    /// A value written by a `fail` op was read.
    G1a,
    /// An op read a value it wrote itself (before committing).
    PrecommittedRead,
    /// Inside one op, consecutive reads of a key skipped a known record.
    IntPollSkip,
    /// Inside one op, a read of a key went backwards or repeated.
    IntNonmonotonicPoll,
    /// Inside one op, two sends to a key were not adjacent (normal in Kafka).
    IntSendSkip,
    /// Inside one op, two sends to a key landed in reverse order.
    IntNonmonotonicSend,
    /// A process's next op started past where its last ok op ended.
    PollSkip,
    /// A process's next op started at or before where its last ok op ended.
    NonmonotonicPoll,
    /// A process's later send landed before its earlier send.
    NonmonotonicSend,
    /// A send invoked after another send was acked landed at a lower position.
    RealtimeNonmonotonicSend,
    /// An op read a value whose send was invoked only after the op completed.
    FutureRead,
    /// A polled value no op ever sent.
    UnexpectedValue,
    /// A position no committed group consumer processed, below the group's highest.
    GroupGap,
    /// A position processed by two committed transactional group consumers.
    GroupDuplicate,
    /// Write cycle (ww edges only).
    G0,
    /// Write cycle with realtime edges.
    G0Realtime,
    /// Cycle of wr edges: circular information flow.
    G1c,
    /// Cycle of wr and realtime edges.
    G1cRealtime,
    /// Cycle mixing ww and wr edges (normal for non-isolated Kafka writes).
    G1cWw,
    /// Cycle mixing ww, wr and realtime edges.
    G1cWwRealtime,
    /// A wr/rt strongly connected component whose cycle search ran out of budget.
    SccWithoutCycle,
    /// A ww/wr/rt strongly connected component whose cycle search ran out of budget.
    SccWithoutCycleWw,
}

impl AnomalyKind {
    /// Every kind, in report order.
    pub const ALL: [Self; 28] = [
        Self::InconsistentOffsets,
        Self::Duplicate,
        Self::LostWrite,
        Self::Unseen,
        Self::UnseenUnknown,
        Self::TornTxn,
        Self::G1a,
        Self::PrecommittedRead,
        Self::IntPollSkip,
        Self::IntNonmonotonicPoll,
        Self::IntSendSkip,
        Self::IntNonmonotonicSend,
        Self::PollSkip,
        Self::NonmonotonicPoll,
        Self::NonmonotonicSend,
        Self::RealtimeNonmonotonicSend,
        Self::FutureRead,
        Self::UnexpectedValue,
        Self::GroupGap,
        Self::GroupDuplicate,
        Self::G0,
        Self::G0Realtime,
        Self::G1c,
        Self::G1cRealtime,
        Self::G1cWw,
        Self::G1cWwRealtime,
        Self::SccWithoutCycle,
        Self::SccWithoutCycleWw,
    ];

    /// The Jepsen-style name used in reports and golden files.
    pub fn name(self) -> &'static str {
        match self {
            Self::InconsistentOffsets => "inconsistent-offsets",
            Self::Duplicate => "duplicate",
            Self::LostWrite => "lost-write",
            Self::Unseen => "unseen",
            Self::UnseenUnknown => "unseen-unknown",
            Self::TornTxn => "torn-txn",
            Self::G1a => "G1a",
            Self::PrecommittedRead => "precommitted-read",
            Self::IntPollSkip => "int-poll-skip",
            Self::IntNonmonotonicPoll => "int-nonmonotonic-poll",
            Self::IntSendSkip => "int-send-skip",
            Self::IntNonmonotonicSend => "int-nonmonotonic-send",
            Self::PollSkip => "poll-skip",
            Self::NonmonotonicPoll => "nonmonotonic-poll",
            Self::NonmonotonicSend => "nonmonotonic-send",
            Self::RealtimeNonmonotonicSend => "realtime-nonmonotonic-send",
            Self::FutureRead => "future-read",
            Self::UnexpectedValue => "unexpected-value",
            Self::GroupGap => "group-gap",
            Self::GroupDuplicate => "group-duplicate",
            Self::G0 => "G0",
            Self::G0Realtime => "G0-realtime",
            Self::G1c => "G1c",
            Self::G1cRealtime => "G1c-realtime",
            Self::G1cWw => "G1c-ww",
            Self::G1cWwRealtime => "G1c-ww-realtime",
            Self::SccWithoutCycle => "scc-without-cycle",
            Self::SccWithoutCycleWw => "scc-without-cycle-ww",
        }
    }

    /// Parses a name produced by [`AnomalyKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl std::fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for AnomalyKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for AnomalyKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown anomaly {name}")))
    }
}

/// One observed anomaly. `ops` are event indices of the ops' completions (or of the
/// invocation for ops that never completed), in the order the explanation mentions them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Anomaly {
    /// Type.
    #[serde(rename = "type")]
    pub kind: AnomalyKind,
    /// The key involved, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// Ops involved (event indices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<u32>,
    /// Values involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Val>,
    /// Offsets involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offsets: Vec<Offset>,
    /// Position difference for ordering anomalies (1 means "adjacent").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
    /// For poll-skip / nonmonotonic-poll: whether the process was a subscribed group member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<bool>,
    /// Whether this anomaly is bad under the checked config (set by the verdict).
    #[serde(default)]
    pub bad: bool,
    /// One sentence in Jepsen's style.
    pub explanation: String,
}

impl Anomaly {
    /// A new anomaly with only its kind and explanation set.
    pub fn new(kind: AnomalyKind, explanation: String) -> Self {
        Self {
            kind,
            key: None,
            ops: Vec::new(),
            values: Vec::new(),
            offsets: Vec::new(),
            delta: None,
            subscribed: None,
            bad: false,
            explanation,
        }
    }

    pub(crate) fn key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    pub(crate) fn ops(mut self, ops: Vec<u32>) -> Self {
        self.ops = ops;
        self
    }

    pub(crate) fn values(mut self, values: Vec<Val>) -> Self {
        self.values = values;
        self
    }

    pub(crate) fn offsets(mut self, offsets: Vec<Offset>) -> Self {
        self.offsets = offsets;
        self
    }

    pub(crate) fn delta(mut self, delta: i64) -> Self {
        self.delta = Some(delta);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: names are unique and parse back, so golden files and reports agree.
    #[test]
    fn names_round_trip() {
        for kind in AnomalyKind::ALL {
            assert_eq!(AnomalyKind::from_name(kind.name()), Some(kind));
        }
        let mut names: Vec<_> = AnomalyKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AnomalyKind::ALL.len());
    }
}
