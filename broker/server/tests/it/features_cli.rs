//! `weir features describe|upgrade` against the real binary (issue 16, item 3: the
//! metadata records carry a version; docs/cluster.md, "Metadata version").
//!
//! Goal: `describe` prints what the broker's ApiVersions answer says (the build's
//! supported metadata.version range and the cluster's finalized level), a fresh cluster
//! is at the build's highest level, a cluster created at level 1 (as by a build without
//! levels) is upgraded by `upgrade --metadata 2` (a dry run changes nothing), the level
//! survives a restart (it is a record of the metadata log), and a downgrade or a level
//! beyond the build is refused with a non-zero exit and Kafka's error name.
//! Method: spawn `weir serve` (single node) with `weir.metadata.version.bootstrap = 1` in
//! its config file, run the CLI, restart the broker on the same data directory.
// A test at the binary edge: it polls the real clock for the broker's first commit.
#![allow(clippy::disallowed_methods)]

use crate::common;

use std::path::Path;

use common::{field, fields, run_cli_at, stdout_of, Process};

fn spawn(data_dir: &Path, config: Option<&Path>) -> Process {
    let mut args = vec![
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--gateway".as_ref(),
        "off".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ];
    if let Some(config) = config {
        args.extend(["--config".as_ref(), config.as_os_str()]);
    }
    Process::spawn_args(args)
}

/// `weir features describe`'s metadata.version line: (min, max, finalized).
fn describe(address: &str) -> (String, String, String) {
    let text = stdout_of(&run_cli_at(address, &["features", "describe"]));
    let line = (text.lines())
        .find(|line| line.starts_with("Feature: metadata.version\t"))
        .unwrap_or_else(|| panic!("no metadata.version line in {text:?}"));
    let fields = fields(line);
    (
        field(&fields, "SupportedMinVersion").to_owned(),
        field(&fields, "SupportedMaxVersion").to_owned(),
        field(&fields, "FinalizedVersionLevel").to_owned(),
    )
}

fn level(address: &str) -> String {
    describe(address).2
}

#[test]
fn a_fresh_cluster_describes_the_builds_highest_level() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let broker = spawn(&data_dir.path().join("data"), None);
    // The controller's first proposal finalizes the level: a describe right after start
    // may come before that record committed (level 1 until then), so poll, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (min, max, finalized) = loop {
        let (min, max, finalized) = describe(&broker.address);
        if finalized == max || std::time::Instant::now() >= deadline {
            break (min, max, finalized);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!((min.as_str(), finalized.as_str()), ("1", max.as_str()));
    assert!(max.parse::<u16>().expect("a level") >= 2, "{max}");
}

#[test]
fn upgrade_from_level_1_persists_and_downgrades_are_refused() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = data_dir.path().join("weir.toml");
    std::fs::write(&config, "weir.metadata.version.bootstrap = 1\n").expect("config");
    let data = data_dir.path().join("data");
    let broker = spawn(&data, Some(&config));
    assert_eq!(level(&broker.address), "1");

    let dry = run_cli_at(
        &broker.address,
        &["features", "upgrade", "--metadata", "2", "--dry-run"],
    );
    assert!(stdout_of(&dry).contains("would be finalized"));
    assert_eq!(level(&broker.address), "1", "a dry run changes nothing");

    let done = run_cli_at(&broker.address, &["features", "upgrade", "--metadata", "2"]);
    assert!(stdout_of(&done).contains("metadata.version 2 finalized"));
    assert_eq!(level(&broker.address), "2");

    for refused in ["1", "99"] {
        let output = run_cli_at(
            &broker.address,
            &["features", "upgrade", "--metadata", refused],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--metadata {refused} accepted");
        assert!(stderr.contains("INVALID_UPDATE_VERSION"), "{stderr}");
    }

    // The level is a record of the metadata log: a restart keeps it (the bootstrap
    // setting only concerns a fresh cluster).
    broker.kill_9();
    let broker = spawn(&data, Some(&config));
    assert_eq!(level(&broker.address), "2");
}
