//! The check result (§6.6 of `jepsen-checker.md`): verdict, counts per anomaly type,
//! capped and severity-sorted examples, per-function stats, unseen summary, and every
//! anomaly for `anomalies.jsonl`.
//!
//! This file is the result's shape and its renderings; the checker fills it in
//! (`check/assemble.rs`), so a report never reaches back into the checker's arenas.
//!
//! Invariants (kept by the checker): anomalies are sorted and deduplicated; `counts` has
//! an entry for every type seen (informational ones included) and none for absent types;
//! `valid` is true iff the verdict is [`Verdict::Valid`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::{Key, Val};
use crate::verdict::Verdict;

/// ok/fail/info completions of one function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FStats {
    /// `ok` completions.
    pub ok: usize,
    /// `fail` completions.
    pub fail: usize,
    /// `info` completions (including invocations that never completed).
    pub info: usize,
}

/// Committed writes that no poll returned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnseenSummary {
    /// How many in total.
    pub count: usize,
    /// How many per key.
    pub per_key: BTreeMap<Key, usize>,
    /// The first few (key, value), sorted.
    pub messages: Vec<(Key, Val)>,
}

/// Result of [`crate::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// True iff the verdict is `valid`.
    pub valid: bool,
    /// Valid, invalid or unknown.
    pub verdict: Verdict,
    /// Anomaly types with at least one bad instance, sorted by name.
    pub bad_types: Vec<String>,
    /// Why the verdict is `unknown` (empty otherwise).
    pub unknown_reasons: Vec<String>,
    /// Count per anomaly type (all types found, bad or not).
    pub counts: BTreeMap<String, usize>,
    /// Up to `max_examples` anomalies per type, most severe first.
    pub examples: BTreeMap<String, Vec<Anomaly>>,
    /// Completions per function.
    pub stats: BTreeMap<String, FStats>,
    /// Distinct errors of `info` completions.
    pub info_causes: Vec<String>,
    /// Per key: whether the final reads caught up.
    pub caught_up: BTreeMap<Key, bool>,
    /// Committed but never-read writes.
    pub unseen: UnseenSummary,
    /// Events in the history.
    pub event_count: usize,
    /// Client operations (invocations).
    pub op_count: usize,
    /// Every anomaly, sorted (written by [`Report::anomalies_jsonl`], not by `to_json`).
    #[serde(skip_serializing, default)]
    pub anomalies: Vec<Anomaly>,
}

impl Report {
    /// The report (without the full anomaly list) as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports always serialize")
    }

    /// Every anomaly, one JSON object per line.
    pub fn anomalies_jsonl(&self) -> String {
        let mut out = String::new();
        for anomaly in &self.anomalies {
            out.push_str(&serde_json::to_string(anomaly).expect("anomalies always serialize"));
            out.push('\n');
        }
        out
    }

    /// `{"valid": true|false, "anomalies": {"<name>": <count>, ...}}` on one line: the last
    /// line `cargo xtask check` prints.
    pub fn summary_line(&self) -> String {
        let mut line = format!("{{\"valid\": {}, \"anomalies\": {{", self.valid);
        for (i, (name, count)) in self.counts.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(line, "{separator}\"{name}\": {count}")
                .expect("writing to a String cannot fail");
        }
        line.push_str("}}");
        line
    }

    /// Count of one anomaly type (0 if absent).
    pub fn count(&self, kind: AnomalyKind) -> usize {
        self.counts.get(kind.name()).copied().unwrap_or(0)
    }
}
