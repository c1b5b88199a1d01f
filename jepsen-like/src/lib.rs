//! `weir-jepsen`: the Jepsen-style history format and queue checker shared by the
//! simulator (`sim/`) and the real-process harness.
//!
//! A test records a [`History`] of client operations (`invoke` then `ok`/`fail`/`info`,
//! one JSON object per line, see `shared/notes/jepsen-checker.md` §2.5); [`check`] pairs the
//! events into operations, rebuilds each partition's version order from what was sent and
//! polled, looks for the anomalies of Jepsen's Kafka workload plus our extensions
//! (lost writes, duplicates, skips, reordering, aborted reads, dependency cycles, ...) and
//! judges them with the verdict matrix of the [`CheckConfig`].
//!
//! ```
//! let text = r#"{"config":{"acks":"all"}}
//! {"process":0,"type":"invoke","f":"send","value":[["send",1,10]]}
//! {"process":0,"type":"ok","f":"send","value":[["send",1,[0,10]]]}
//! {"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
//! {"process":1,"type":"ok","f":"poll","value":[["poll",{"1":[[0,10]]}]]}"#;
//! let history = weir_jepsen::History::parse_str(text).expect("valid JSONL");
//! let report = weir_jepsen::check(&history.config(), &history).expect("well-formed");
//! assert!(report.valid);
//! assert_eq!(report.summary_line(), r#"{"valid": true, "anomalies": {}}"#);
//! ```
//!
//! # Architecture invariants
//!
//! - Pure and deterministic: no IO besides [`History::load`], no clocks, no threads, no
//!   randomness (the synthetic generator uses its own seeded PRNG); no hash maps. The same
//!   history and config always produce the same report, byte for byte.
//! - Cost is O(n log n) in history size (sorts and binary searches over dense arrays), plus
//!   O(n·C) for realtime edges with C concurrent clients; cycle search has a step budget.
//! - Checks describe; [`verdict`] judges. Adding an anomaly type means a check plus one
//!   matrix row, never a special case elsewhere.
//! - Malformed histories (harness bugs) are errors, not anomalies.

pub mod anomaly;
mod check;
pub mod config;
#[cfg(feature = "harness")]
pub mod harness;
pub mod history;
pub mod report;
pub mod synthetic;
pub mod verdict;

pub use anomaly::{Anomaly, AnomalyKind};
pub use check::check;
pub use config::{Acks, CheckConfig, Isolation, SubVia};
pub use history::{
    Event, Expect, Header, History, HistoryError, Key, Kind, Mop, Offset, Phase, Process,
    Rebalance, RebalanceKind, Val, Value, F,
};
pub use report::{FStats, Report, UnseenSummary};
pub use synthetic::{synthetic_history, Workload};
pub use verdict::Verdict;

/// Loads a JSONL file and checks it with the config from its header (default if none).
pub fn check_file(path: &std::path::Path) -> Result<(History, Report), HistoryError> {
    let history = History::load(path)?;
    let report = check(&history.config(), &history)?;
    Ok((history, report))
}
