//! Model-based tests (§6.9.2 and §6.9.6 of jepsen-checker.md): histories of the reference
//! executor, a *correct* queue with faults it must tolerate, never show a bad anomaly, for
//! every config of the matrix it can run under; and a large synthetic history checks fast.

use proptest::prelude::*;
use weir_jepsen::{check, synthetic_history, SubVia, Verdict, Workload};

fn workload_strategy() -> impl Strategy<Value = Workload> {
    (
        any::<u64>(),
        1usize..400,
        1u32..5,
        1u32..8,
        any::<bool>(),
        prop_oneof![
            Just(SubVia::Assign),
            Just(SubVia::Subscribe),
            Just(SubVia::Both)
        ],
        0u32..25,
        0u32..25,
        0u32..5,
        1u32..6,
    )
        .prop_map(
            |(seed, ops, keys, threads, txn, sub_via, fail, info, crash, mops)| Workload {
                ops,
                seed,
                key_count: keys,
                thread_count: threads,
                txn,
                sub_via,
                fail_percent: fail,
                info_percent: info,
                crash_percent: crash,
                mops_max: mops,
                final_reads: true,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // Goal: no false positives. Method: random workloads of the reference executor (random
    // interleavings, fail/info/crash outcomes, txn or not, assign/subscribe/both), checked
    // under the strictest config they satisfy; no anomaly may be bad.
    #[test]
    fn reference_histories_have_no_bad_anomaly(workload in workload_strategy()) {
        let history = workload.history();
        let report = check(&workload.config(), &history).expect("well-formed history");
        prop_assert!(
            report.bad_types.is_empty(),
            "{:?}\n{}\n{}",
            workload,
            report.anomalies_jsonl(),
            history.to_jsonl()
        );
        prop_assert_ne!(report.verdict, Verdict::Invalid);
    }
}

// Goal: the default synthetic workload (what benchmarks time) is valid and exercises every
// operation. Method: check a mid-size history and require a `valid` verdict.
#[test]
fn synthetic_history_is_valid() {
    let history = synthetic_history(5_000, 42);
    let report = check(&history.config(), &history).expect("well-formed history");
    assert!(
        report.valid,
        "{}\n{}",
        report.to_json(),
        report.anomalies_jsonl()
    );
    assert_eq!(report.count(weir_jepsen::AnomalyKind::Unseen), 0);
}

// Goal: scale (§6.9.6). Method: a 100k-op synthetic history goes through serialization,
// parsing and checking; timing is not asserted (CI machines vary), but this must stay fast.
#[test]
fn scale_100k_ops() {
    let history = synthetic_history(100_000, 1);
    let text = history.to_jsonl();
    let parsed = weir_jepsen::History::parse_str(&text).expect("round trip");
    let report = check(&parsed.config(), &parsed).expect("well-formed history");
    assert!(report.valid, "{}", report.to_json());
    assert!(report.op_count >= 100_000);
}

// Goal: determinism. Method: the same history checked twice gives identical JSON reports.
#[test]
fn reports_are_deterministic() {
    let mut workload = Workload::new(2_000, 9);
    workload.txn = true;
    workload.sub_via = SubVia::Both;
    let history = workload.history();
    let a = check(&workload.config(), &history).expect("well-formed history");
    let b = check(&workload.config(), &history).expect("well-formed history");
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.anomalies_jsonl(), b.anomalies_jsonl());
}
