//! Goal: a seed replays bit for bit, as the reproduction commands promise. Method: run the
//! `weir-sim` binary's `replay` twice per workload, each in a fresh process, for a seed
//! whose runs include broker crashes and restarts, and compare the printed trace hashes.

use std::process::Command;

fn trace_hash(seed: &str, workload: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_weir-sim"))
        .args(["replay", "--seed", seed, "--workload", workload])
        .output()
        .expect("weir-sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{workload} seed {seed} failed:\n{stdout}"
    );
    stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("trace-hash: "))
        .expect("the last line carries the trace hash")
        .to_owned()
}

#[test]
fn crash_workloads_replay_bit_for_bit() {
    for workload in ["produce-crash", "txn-crash", "group-crash"] {
        let first = trace_hash("3", workload);
        let second = trace_hash("3", workload);
        assert_eq!(first, second, "{workload} seed 3 replayed differently");
    }
}
