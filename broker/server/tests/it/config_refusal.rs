//! Goal: `weir serve` refuses a bad config at start with a message naming the key, and
//! exits non-zero. Method: run the real binary with broken config files and flags.

use std::process::Command;

fn serve_with_config(contents: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("weir.toml");
    std::fs::write(&path, contents).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run weir");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn unknown_key_is_refused() {
    let (success, stderr) = serve_with_config("log.retention.foo = 1\n");
    assert!(!success);
    assert!(
        stderr.contains("unknown setting \"log.retention.foo\""),
        "{stderr}"
    );
    assert!(stderr.contains("weir.toml"), "{stderr}");
}

#[test]
fn invalid_value_is_refused() {
    let (success, stderr) = serve_with_config("num.partitions = \"lots\"\n");
    assert!(!success);
    assert!(
        stderr.contains("invalid value for \"num.partitions\""),
        "{stderr}"
    );
}

#[test]
fn invalid_toml_is_refused() {
    let (success, stderr) = serve_with_config("listeners = \n");
    assert!(!success);
    assert!(stderr.contains("invalid TOML"), "{stderr}");
}

#[test]
fn bad_listen_flag_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--listen", "no-port-here"])
        .output()
        .expect("run weir");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--listen"), "{stderr}");
}
