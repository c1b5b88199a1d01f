//! Assembling the [`Report`] from what the checker found: the verdict (bad anomalies
//! first, then Jepsen's "too little to judge" rules), counts, capped examples,
//! per-function stats and the unseen summary.
//!
//! Invariants: anomalies are sorted, deduplicated and marked bad or not under the config
//! before anything is counted; the verdict is `valid` only with no bad anomaly and no
//! reason to be unsure.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::{Arena, Facts, NONE};
use crate::anomaly::{Anomaly, AnomalyKind};
use crate::config::CheckConfig;
use crate::history::{Key, Kind, Process, F};
use crate::report::{FStats, Report, UnseenSummary};
use crate::verdict::{is_bad, Verdict};
use crate::History;

/// Unseen messages listed in the report, at most.
const UNSEEN_LISTED_MAX: usize = 256;

/// The report of one check: every input is the checker's own.
pub(crate) fn report(
    config: &CheckConfig,
    history: &History,
    arena: &Arena,
    facts: Facts,
    mut anomalies: Vec<Anomaly>,
) -> Report {
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
    Report {
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
