//! The check result (§6.6 of `jepsen-checker.md`): verdict, counts per anomaly type,
//! capped and severity-sorted examples, per-function stats, unseen summary, and every
//! anomaly for `anomalies.jsonl`.
//!
//! Invariants: anomalies are sorted and deduplicated; `counts` has an entry for every type
//! seen (informational ones included) and none for absent types; `valid` is true iff the
//! verdict is [`Verdict::Valid`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::check::{Arena, Facts, NONE};
use crate::config::CheckConfig;
use crate::history::{Key, Kind, Process, Val, F};
use crate::verdict::{is_bad, Verdict};
use crate::History;

/// Unseen messages listed in the report, at most.
const UNSEEN_LISTED_MAX: usize = 256;

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
    pub(crate) fn build(
        config: &CheckConfig,
        history: &History,
        arena: &Arena,
        facts: Facts,
        mut anomalies: Vec<Anomaly>,
    ) -> Self {
        anomalies.sort_unstable();
        anomalies.dedup();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut bad_types: BTreeSet<String> = BTreeSet::new();
        for anomaly in &mut anomalies {
            anomaly.bad = is_bad(config, anomaly);
            *counts.entry(anomaly.kind.name().to_owned()).or_default() += 1;
            if anomaly.bad {
                bad_types.insert(anomaly.kind.name().to_owned());
            }
        }
        let stats = stats(history, arena);
        let unknown_reasons = unknown_reasons(arena, &stats, &anomalies);
        let verdict = if !bad_types.is_empty() {
            Verdict::Invalid
        } else if !unknown_reasons.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Valid
        };
        let info_causes: BTreeSet<String> = history
            .events
            .iter()
            .filter(|e| e.kind == Kind::Info && matches!(e.process, Process::Client(_)))
            .filter_map(|e| e.error.clone())
            .collect();
        let mut per_key: BTreeMap<Key, usize> = BTreeMap::new();
        for (key, _) in &facts.unseen {
            *per_key.entry(*key).or_default() += 1;
        }
        let unseen = UnseenSummary {
            count: facts.unseen.len(),
            per_key,
            messages: facts
                .unseen
                .iter()
                .take(UNSEEN_LISTED_MAX)
                .copied()
                .collect(),
        };
        Self {
            valid: verdict == Verdict::Valid,
            verdict,
            bad_types: bad_types.into_iter().collect(),
            unknown_reasons,
            counts,
            examples: examples(&anomalies, config.max_examples),
            stats,
            info_causes: info_causes.into_iter().collect(),
            caught_up: arena.keys.iter().copied().zip(facts.caught_up).collect(),
            unseen,
            event_count: history.events.len(),
            op_count: arena.ops.len(),
            anomalies,
        }
    }

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

/// Completions per function of client processes; never-completed ops count as `info`.
fn stats(history: &History, arena: &Arena) -> BTreeMap<String, FStats> {
    let mut stats: BTreeMap<String, FStats> = BTreeMap::new();
    for op in &arena.ops {
        let f = &history.events[op.invoke as usize].f;
        let entry = stats.entry(f.as_str().to_owned()).or_default();
        match op.kind {
            Kind::Ok => entry.ok += 1,
            Kind::Fail => entry.fail += 1,
            Kind::Info | Kind::Invoke => entry.info += 1,
        }
    }
    stats
}

/// Jepsen's "too little to judge" rules, plus final reads that did not catch up.
fn unknown_reasons(
    arena: &Arena,
    stats: &BTreeMap<String, FStats>,
    anomalies: &[Anomaly],
) -> Vec<String> {
    let mut reasons = Vec::new();
    if !arena
        .ops
        .iter()
        .any(|op| op.kind == Kind::Ok && op.has_poll && op.completion != NONE)
    {
        reasons.push("no ok polls".to_owned());
    }
    for (f, counts) in stats {
        let ignored = f == F::Crash.as_str() || f == F::Debug.as_str();
        if !ignored && counts.ok == 0 {
            reasons.push(format!("no ok {f}"));
        }
    }
    if anomalies
        .iter()
        .any(|a| a.kind == AnomalyKind::UnseenUnknown)
    {
        reasons.push("final reads did not catch up on some keys".to_owned());
    }
    reasons
}

/// Up to `max` anomalies per type: largest |delta| first, then shortest op lists (cycles).
fn examples(anomalies: &[Anomaly], max: usize) -> BTreeMap<String, Vec<Anomaly>> {
    let mut by_kind: BTreeMap<String, Vec<&Anomaly>> = BTreeMap::new();
    for anomaly in anomalies {
        by_kind
            .entry(anomaly.kind.name().to_owned())
            .or_default()
            .push(anomaly);
    }
    by_kind
        .into_iter()
        .map(|(name, mut list)| {
            list.sort_by_key(|a| (Reverse(a.delta.map_or(0, i64::unsigned_abs)), a.ops.len()));
            (name, list.into_iter().take(max).cloned().collect())
        })
        .collect()
}
