//! The result of one simulated run: the history checked by `weir_jepsen::check`, the
//! harness's own violations, and the trace hash.

use std::path::PathBuf;

use weir_jepsen::{Header, History};

use crate::trace::Trace;
use crate::workload::Workload;

/// The planted bug compiled into this binary (`cargo xtask sim --planted` builds one at a
/// time), part of every reproduction command.
pub const PLANTED_BUG: Option<&str> = if cfg!(feature = "planted-ack-before-sync") {
    Some("planted-ack-before-sync")
} else if cfg!(feature = "planted-offset-reuse") {
    Some("planted-offset-reuse")
} else if cfg!(feature = "planted-skip-crc") {
    Some("planted-skip-crc")
} else if cfg!(feature = "planted-skip-dedup") {
    Some("planted-skip-dedup")
} else if cfg!(feature = "planted-skip-seq-after-restart") {
    Some("planted-skip-seq-after-restart")
} else if cfg!(feature = "planted-expose-above-lso") {
    Some("planted-expose-above-lso")
} else if cfg!(feature = "planted-accept-fenced-epoch") {
    Some("planted-accept-fenced-epoch")
} else if cfg!(feature = "planted-group-double-assign") {
    Some("planted-group-double-assign")
} else if cfg!(feature = "planted-lose-offset-commit") {
    Some("planted-lose-offset-commit")
} else if cfg!(feature = "planted-hw-before-isr") {
    Some("planted-hw-before-isr")
} else if cfg!(feature = "planted-skip-truncation") {
    Some("planted-skip-truncation")
} else if cfg!(feature = "planted-elect-outside-isr") {
    Some("planted-elect-outside-isr")
} else if cfg!(feature = "planted-stale-decisions") {
    Some("planted-stale-decisions")
} else if cfg!(feature = "planted-compact-latest") {
    Some("planted-compact-latest")
} else if cfg!(feature = "planted-compact-past-lso") {
    Some("planted-compact-past-lso")
} else {
    None
};

/// Everything a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The simulator that ran it.
    pub simulator: &'static str,
    /// Root seed.
    pub seed: u64,
    /// Workload.
    pub workload: Workload,
    /// The recorded history (header carries the checker config and the seed).
    pub history: History,
    /// Violations the harness saw directly.
    pub violations: Vec<String>,
    /// Fault actions, in order, with their simulated times.
    pub faults: Vec<String>,
    /// FNV-1a over history, faults and violations.
    pub trace_hash: u64,
    /// The checker's verdict line, or why the history could not be checked.
    pub verdict: String,
    /// True when the checker said valid and the harness saw no violation.
    pub passed: bool,
}

impl RunOutcome {
    /// Check a finished run and compute its trace hash.
    pub fn judge(
        simulator: &'static str,
        seed: u64,
        workload: Workload,
        mut history: History,
        violations: Vec<String>,
        faults: Vec<String>,
    ) -> RunOutcome {
        let config = workload.spec().check_config();
        let mut header = Header {
            config: config.clone(),
            ..Header::default()
        };
        header.extra.insert("seed".into(), seed.into());
        header
            .extra
            .insert("workload".into(), workload.name().into());
        header.extra.insert("simulator".into(), simulator.into());
        history.header = Some(header);
        let (verdict, valid) = if workload.spec().compact {
            // Compaction removes acknowledged records by design, which the Jepsen checker
            // calls lost; these workloads check their own properties (harness violations,
            // `workload_compact`) and record only `debug` ops.
            (
                "compaction workload: judged by its own properties".to_owned(),
                true,
            )
        } else {
            match weir_jepsen::check(&config, &history) {
                Ok(report) => (report.summary_line(), report.valid),
                Err(error) => (format!("malformed history: {error}"), false),
            }
        };
        let mut trace = Trace::default();
        // Two workloads with equal histories (acks=1 and acks=all agree on one node) still
        // get different hashes.
        trace.line(workload.name());
        for event in &history.events {
            trace.line(&event.to_json_line());
        }
        for line in faults.iter().chain(&violations) {
            trace.line(line);
        }
        RunOutcome {
            simulator,
            seed,
            workload,
            history,
            passed: valid && violations.is_empty(),
            violations,
            faults,
            trace_hash: trace.finish(),
            verdict,
        }
    }

    /// The one command that replays this run bit for bit (with the planted bug this binary
    /// was built with, if any).
    pub fn repro_command(&self) -> String {
        let planted = PLANTED_BUG
            .map(|bug| format!(" --planted-bug {bug}"))
            .unwrap_or_default();
        format!(
            "cargo xtask sim --sim {} --seed {} --workload {}{planted}",
            self.simulator,
            self.seed,
            self.workload.name()
        )
    }

    /// Write the history to `target/sim-failures/<simulator>-<workload>-<seed>.jsonl`.
    pub fn write_history(&self, root: &std::path::Path) -> std::io::Result<PathBuf> {
        let dir = root.join("target/sim-failures");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!(
            "{}-{}-{}.jsonl",
            self.simulator,
            self.workload.name(),
            self.seed
        ));
        std::fs::write(&path, self.history.to_jsonl())?;
        Ok(path)
    }
}
