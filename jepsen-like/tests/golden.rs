//! Golden histories: each file's first line carries the config and the expected verdict and
//! anomaly counts; the checker must reproduce them exactly (§6.9.1 of jepsen-checker.md).
//!
//! Every golden is tested twice: from `shared/golden` beside the repository (the shared
//! source of truth, skipped when absent) and from the copy in `tests/golden`, so the suite
//! also runs from a bare clone. Our own goldens (30 and up) live only in `tests/golden`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weir_jepsen::{check, History};

const SHARED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden");
const LOCAL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

/// Checks one golden file against its header's expectation; panics with the full report.
fn assert_golden(path: &Path) {
    let history = History::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = history
        .header
        .clone()
        .unwrap_or_else(|| panic!("{}: no header", path.display()));
    let expect = header
        .expect
        .unwrap_or_else(|| panic!("{}: no expect", path.display()));
    let report =
        check(&header.config, &history).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let want: BTreeMap<String, usize> = expect
        .anomalies
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        report.counts,
        want,
        "{}: anomaly counts differ\n{}\n{}",
        path.display(),
        report.to_json(),
        report.anomalies_jsonl()
    );
    assert_eq!(
        report.valid,
        expect.valid,
        "{}: validity differs\n{}",
        path.display(),
        report.to_json()
    );
}

fn shared(name: &str) {
    let path = PathBuf::from(SHARED_DIR).join(name);
    if path.exists() {
        assert_golden(&path);
    } else {
        eprintln!("skipping {}: shared/ not present", path.display());
    }
}

fn local(name: &str) {
    assert_golden(&PathBuf::from(LOCAL_DIR).join(name));
}

/// One test module per golden file: `shared` and `local` copies.
macro_rules! golden {
    ($($module:ident => $file:literal,)*) => {$(
        mod $module {
            // Goal: the checker reproduces this golden's expected counts and verdict.
            #[test]
            fn shared() {
                super::shared($file);
            }
            #[test]
            fn local() {
                super::local($file);
            }
        }
    )*};
}

golden! {
    g01_valid_basic => "01-valid-basic.jsonl",
    g02_lost_write => "02-lost-write.jsonl",
    g05_duplicate => "05-duplicate.jsonl",
    g06_poll_skip_assign => "06-poll-skip-assign.jsonl",
    g08_nonmonotonic_poll => "08-nonmonotonic-poll.jsonl",
    g10_nonmonotonic_send => "10-nonmonotonic-send.jsonl",
    g12_g1a_aborted_read => "12-G1a-aborted-read.jsonl",
    g14_g1c_wr_cycle => "14-G1c-wr-cycle.jsonl",
    g17_g0_write_cycle_allowed => "17-G0-write-cycle-allowed.jsonl",
    g18_unseen_acks_all => "18-unseen-acks-all.jsonl",
    g19_unseen_acks1_allowed => "19-unseen-acks1-allowed.jsonl",
    g21_info_conflict_not_flagged => "21-info-conflict-not-flagged.jsonl",
    g23_txn_abort_rewind_ok => "23-txn-abort-rewind-ok.jsonl",
    g25_group_gap => "25-group-gap.jsonl",
    g30_duplicate_idempotent_ok_sends => "30-duplicate-idempotent-ok-sends.jsonl",
    g31_duplicate_allowed_without_idempotence => "31-duplicate-allowed-without-idempotence.jsonl",
    g32_inconsistent_offsets => "32-inconsistent-offsets.jsonl",
    g33_inconsistent_offsets_acks1_allowed => "33-inconsistent-offsets-acks1-allowed.jsonl",
    g34_nonmonotonic_poll_assign => "34-nonmonotonic-poll-assign.jsonl",
    g35_nonmonotonic_poll_subscribe_allowed => "35-nonmonotonic-poll-subscribe-allowed.jsonl",
    g36_int_poll_and_rebalance => "36-int-poll-and-rebalance.jsonl",
    g37_future_read_unexpected_value => "37-future-read-unexpected-value.jsonl",
    g38_precommitted_read => "38-precommitted-read.jsonl",
    g39_torn_txn => "39-torn-txn.jsonl",
    g40_unseen_unknown_final_phase => "40-unseen-unknown-final-phase.jsonl",
    g41_group_duplicate_eos => "41-group-duplicate-eos.jsonl",
    g42_int_nonmonotonic_send => "42-int-nonmonotonic-send.jsonl",
    g43_info_txn_atomic_lost_write => "43-info-txn-atomic-lost-write.jsonl",
    g44_g1c_ww_informational => "44-G1c-ww-informational.jsonl",
}

// Goal: a golden added to either directory is never silently untested.
// Method: check every *.jsonl found in both directories.
#[test]
fn every_golden_file_passes() {
    let mut checked = 0;
    for dir in [SHARED_DIR, LOCAL_DIR] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.retain(|p| p.extension().is_some_and(|x| x == "jsonl"));
        paths.sort();
        for path in paths {
            assert_golden(&path);
            checked += 1;
        }
    }
    assert!(checked >= 29, "only {checked} goldens found");
}

// Goal: the local copies of the shared goldens are identical to shared/ (when present).
#[test]
fn local_copies_match_shared() {
    let Ok(entries) = std::fs::read_dir(SHARED_DIR) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let shared = std::fs::read_to_string(entry.path()).expect("readable shared golden");
        let local = std::fs::read_to_string(PathBuf::from(LOCAL_DIR).join(entry.file_name()))
            .unwrap_or_else(|_| panic!("{:?} has no local copy", entry.file_name()));
        assert_eq!(
            shared,
            local,
            "{:?} differs from shared/",
            entry.file_name()
        );
    }
}
