//! End-to-end tests of the real-process harness (feature `harness`): a short 1-node job
//! against a real `weir` process must produce a valid history, and the same job with a
//! planted harness bug (an acknowledged value dropped from every read) must be rejected.
//!
//! Needs a built `weir` binary: `$WEIR_BIN`, else target/release/weir, else target/debug/weir
//! (`cargo build -p weir` first). Uses network namespaces when running as root, else the
//! proxy network. The Python client needs confluent-kafka (`cargo xtask install-deps`).
#![cfg(feature = "harness")]

use std::path::PathBuf;

use weir_jepsen::harness::schedule::FaultKind;
use weir_jepsen::harness::workload::WorkloadKind;
use weir_jepsen::harness::{run, Options, Plant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn weir_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_BIN") {
        return PathBuf::from(path);
    }
    let candidates = [
        root().join("target/release/weir"),
        root().join("target/debug/weir"),
    ];
    let found = candidates.iter().find(|p| p.exists()).cloned();
    found.unwrap_or_else(|| panic!("no weir binary: run `cargo build -p weir` or set WEIR_BIN"))
}

fn options(seed: u64, netns: bool, plant: Option<Plant>) -> Options {
    Options {
        nodes: 1,
        time_s: 12,
        nemesis: vec![FaultKind::Kill, FaultKind::Pause],
        workload: WorkloadKind::Queue,
        seed,
        out: std::env::temp_dir().join("weir-jepsen-tests"),
        weir: weir_bin(),
        keys: 4,
        rdkafka: true,
        netns,
        two_down_only: false,
        plant,
        python_client: root().join("jepsen-like/clients/queue_client.py"),
    }
}

// Goal: a healthy broker under kill -9 and SIGSTOP passes, with the history, the results
// and a self-contained report written. Method: a 12-second 1-node run, then read the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_run_is_valid_and_reported() {
    let outcome = run(options(11, true, None)).await.expect("harness ran");
    assert!(
        outcome.valid,
        "{:?}; see {}",
        outcome.summaries,
        outcome.html.display()
    );
    let html = std::fs::read_to_string(&outcome.html).expect("index.html");
    assert!(
        html.contains("VALID") && html.contains("<svg"),
        "report lacks verdict or plots"
    );
    assert!(
        html.contains("start-kill"),
        "report lacks the nemesis events"
    );
    let history = weir_jepsen::History::load(&outcome.dir.join("history.jsonl")).expect("history");
    let sends_ok = history
        .events
        .iter()
        .filter(|e| e.f == weir_jepsen::F::Send && e.kind == weir_jepsen::Kind::Ok)
        .count();
    assert!(sends_ok > 50, "only {sends_ok} acknowledged sends");
    // Both clients wrote: the Rust actors' and the librdkafka client's process ids.
    let external = history
        .events
        .iter()
        .any(|e| matches!(e.process, weir_jepsen::Process::Client(p) if p >= 1_000_000));
    assert!(external, "no librdkafka events in the history");
}

// Goal: the checker stays honest on real histories. Method: the same kind of run over
// the proxy network, with one acknowledged value removed from every poll: the run must be
// judged invalid with a lost write / unseen value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_lost_write_is_rejected() {
    let mut options = options(12, false, Some(Plant::DropAcked));
    options.nemesis = Vec::new();
    options.time_s = 6;
    let outcome = run(options).await.expect("harness ran");
    assert!(
        !outcome.valid,
        "a dropped acked write passed: {:?}",
        outcome.summaries
    );
    let summary = outcome.summaries.join(" ");
    assert!(
        summary.contains("unseen") || summary.contains("lost-write"),
        "{summary}"
    );
}
