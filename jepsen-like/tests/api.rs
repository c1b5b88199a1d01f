//! Behaviour of the public API beyond the goldens: malformed histories are errors, the cycle
//! budget degrades to `scc-without-cycle`, unknown verdicts, and the summary line format.

use weir_jepsen::{check, AnomalyKind, CheckConfig, History, HistoryError, Verdict};

fn history(lines: &[&str]) -> History {
    History::parse_str(&lines.join("\n")).expect("valid JSONL")
}

// Goal: harness bugs are rejected, not judged. Method: one minimal history per error.
#[test]
fn malformed_histories_are_errors() {
    let config = CheckConfig::default();
    let outstanding = history(&[
        r#"{"process":0,"type":"invoke","f":"poll","value":[["poll"]]}"#,
        r#"{"process":0,"type":"invoke","f":"poll","value":[["poll"]]}"#,
    ]);
    assert!(matches!(
        check(&config, &outstanding),
        Err(HistoryError::Outstanding { index: 1, .. })
    ));
    let unmatched = history(&[r#"{"process":0,"type":"ok","f":"poll","value":[["poll"]]}"#]);
    assert!(matches!(
        check(&config, &unmatched),
        Err(HistoryError::Unmatched { index: 0, .. })
    ));
    let wrong_f = history(&[
        r#"{"process":0,"type":"invoke","f":"poll","value":[["poll"]]}"#,
        r#"{"process":0,"type":"ok","f":"send","value":[["send",1,1]]}"#,
    ]);
    assert!(matches!(
        check(&config, &wrong_f),
        Err(HistoryError::Unmatched { index: 1, .. })
    ));
    let reused = history(&[
        r#"{"process":0,"type":"invoke","f":"poll","value":[["poll"]]}"#,
        r#"{"process":0,"type":"info","f":"poll","value":[["poll"]]}"#,
        r#"{"process":0,"type":"invoke","f":"poll","value":[["poll"]]}"#,
    ]);
    assert!(matches!(
        check(&config, &reused),
        Err(HistoryError::ReusedAfterInfo { index: 2, .. })
    ));
    let duplicate = history(&[
        r#"{"process":0,"type":"invoke","f":"send","value":[["send",1,5]]}"#,
        r#"{"process":0,"type":"ok","f":"send","value":[["send",1,[0,5]]]}"#,
        r#"{"process":1,"type":"invoke","f":"send","value":[["send",1,5]]}"#,
    ]);
    assert!(matches!(
        check(&config, &duplicate),
        Err(HistoryError::DuplicateInvocation {
            index: 2,
            key: 1,
            value: 5
        })
    ));
}

// Goal: the cycle search respects its budget. Method: golden 14's G1c with a budget of one
// edge visit must become `scc-without-cycle` (still bad), never a hang or a silent pass.
#[test]
fn exhausted_budget_reports_scc_without_cycle() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/14-G1c-wr-cycle.jsonl"
    );
    let history = History::load(std::path::Path::new(path)).expect("golden loads");
    let mut config = history.config();
    config.cycle_search_steps_max = 1;
    let report = check(&config, &history).expect("well-formed");
    assert_eq!(
        report.count(AnomalyKind::SccWithoutCycle),
        1,
        "{}",
        report.to_json()
    );
    assert_eq!(report.count(AnomalyKind::G1c), 0);
    assert!(!report.valid);
}

// Goal: §6.5's unknown rules. Method: an empty history and one with no ok poll are
// `unknown` (reported as valid=false); nemesis events and unmatched invocations are fine.
#[test]
fn thin_histories_are_unknown() {
    let empty = check(&CheckConfig::default(), &History::default()).expect("empty is fine");
    assert_eq!(empty.verdict, Verdict::Unknown);
    assert!(!empty.valid);
    let no_poll = history(&[
        r#"{"process":"nemesis","type":"info","f":"start-partition","value":["n1"]}"#,
        r#"{"process":0,"type":"invoke","f":"send","value":[["send",1,5]]}"#,
        r#"{"process":0,"type":"ok","f":"send","value":[["send",1,[0,5]]]}"#,
        r#"{"process":1,"type":"invoke","f":"poll","value":[["poll"]]}"#,
    ]);
    // The acked send was never read: with acks=all that alone is bad (no final phase
    // recorded means the history is the final word) ...
    let report = check(&CheckConfig::default(), &no_poll).expect("well-formed");
    assert_eq!(report.verdict, Verdict::Invalid, "{}", report.to_json());
    assert_eq!(report.count(AnomalyKind::Unseen), 1);
    // ... with acks=1 it is allowed, and the history says too little.
    let config = CheckConfig {
        acks: weir_jepsen::Acks::One,
        ..CheckConfig::default()
    };
    let report = check(&config, &no_poll).expect("well-formed");
    assert_eq!(report.verdict, Verdict::Unknown, "{}", report.to_json());
    assert_eq!(
        report.unknown_reasons,
        vec!["no ok polls".to_owned(), "no ok poll".to_owned()]
    );
    assert_eq!(report.stats["poll"].info, 1);
}

// Goal: the last line of `cargo xtask check` has exactly the agreed shape.
#[test]
fn summary_line_format() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/02-lost-write.jsonl"
    );
    let history = History::load(std::path::Path::new(path)).expect("golden loads");
    let report = check(&history.config(), &history).expect("well-formed");
    assert_eq!(
        report.summary_line(),
        r#"{"valid": false, "anomalies": {"int-send-skip": 1, "lost-write": 2, "unseen": 3}}"#
    );
    let parsed: serde_json::Value = serde_json::from_str(&report.summary_line()).expect("JSON");
    assert_eq!(parsed["valid"], false);
}

// Goal: a `rebalance_log` entry without `kind` is accepted (only `keys` matters to the
// checks) and still exempts its keys from the int-*-poll checks. Method: golden 36's
// rebalanced poll (offsets 2 then 0 of key 1 inside one op) with the entry's `kind`
// omitted must parse and be judged valid; without the entry the same op is flagged.
#[test]
fn rebalance_entry_without_kind_is_accepted() {
    let send = [
        concat!(
            r#"{"process":9,"type":"invoke","f":"send","#,
            r#""value":[["send",1,10],["send",1,11],["send",1,12]]}"#
        ),
        concat!(
            r#"{"process":9,"type":"ok","f":"send","#,
            r#""value":[["send",1,[0,10]],["send",1,[1,11]],["send",1,[2,12]]]}"#
        ),
        r#"{"process":0,"type":"invoke","f":"poll","value":[["poll"]]}"#,
        r#"{"process":0,"type":"ok","f":"poll","value":[["poll",{"1":[[0,10],[1,11],[2,12]]}]]}"#,
        r#"{"process":1,"type":"invoke","f":"poll","value":[["poll"],["poll"]]}"#,
    ];
    let polled = concat!(
        r#"{"process":1,"type":"ok","f":"poll","#,
        r#""value":[["poll",{"1":[[2,12]]}],["poll",{"1":[[0,10]]}]]"#
    );
    let with_entry = format!(r#"{polled},"rebalance_log":[{{"keys":[1]}}]}}"#);
    let mut lines = send.to_vec();
    lines.push(&with_entry);
    let rebalanced = History::parse_str(&lines.join("\n")).expect("kind is optional");
    let config = CheckConfig::default();
    let report = check(&config, &rebalanced).expect("well-formed");
    assert_eq!(report.count(AnomalyKind::IntNonmonotonicPoll), 0);
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.to_json());
    assert!(report.valid);

    let without_entry = format!("{polled}}}");
    lines.pop();
    lines.push(&without_entry);
    let report = check(&config, &history(&lines)).expect("well-formed");
    assert_eq!(report.count(AnomalyKind::IntNonmonotonicPoll), 1);
    assert!(!report.valid);
}
