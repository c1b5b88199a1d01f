//! The result of one simulated run: the history checked by `weir_jepsen::check`, the
//! harness's own violations, and the trace hash.

use std::path::PathBuf;

use weir_jepsen::{Header, History};

use crate::trace::Trace;
use crate::workload::Workload;

/// The planted bug this run switched on (`--planted-bug`, in a build with the `planted`
/// feature), part of every reproduction command.
pub fn planted_bug() -> Option<&'static str> {
    weir_core::planted::active().map(weir_core::planted::Bug::name)
}

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

    /// The one command that replays this run bit for bit (with the planted bug of this run,
    /// if any).
    pub fn repro_command(&self) -> String {
        let planted = planted_bug()
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
