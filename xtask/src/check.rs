//! `cargo xtask check FILE.jsonl`: run the weir-jepsen checker on a recorded history.
//!
//! The config comes from the history's first line (`{"config": {...}}`; defaults if absent).
//! Output: the full JSON report, then, as the LAST line,
//! `{"valid": true|false, "anomalies": {"<name>": <count>, ...}}` so scripts can `tail -1`.
//! The caller turns the returned flag into the exit code (0 valid, 1 invalid or unknown).

use std::path::Path;

use anyhow::Context as _;

/// Checks the history at `path`, prints the report, and returns whether it is valid.
pub fn run(path: &Path) -> anyhow::Result<bool> {
    let history = weir_jepsen::History::load(path)
        .with_context(|| format!("loading history {}", path.display()))?;
    let report = weir_jepsen::check(&history.config(), &history)
        .with_context(|| format!("checking history {}", path.display()))?;
    println!("{}", report.to_json());
    println!("{}", report.summary_line());
    Ok(report.valid)
}
