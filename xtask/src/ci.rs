//! `cargo xtask ci`: the whole test command, runnable on a fresh Debian machine with Rust.
//!
//! Order: install missing tools (never skip a suite because a tool is missing: install it),
//! format check, clippy with warnings denied, workspace tests (unit, property, scenario,
//! tidy, in-process server tests), the fixed-seed simulations, a release build of `weir`,
//! then the real-client compatibility suite against that binary, the WASM client's suites
//! and the short Jepsen run.
//!
//! Disk: CI's machine has little (a full disk has stopped a run twice). Integration tests are
//! one binary per crate (`tests/it/`), incremental caches are off, and the simulator-only
//! target dirs are deleted once the simulations have passed.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Result;

use crate::project_root;
use crate::step::{has_program, run_command, step};

/// Runs every CI step in order; stops at the first failure.
pub(crate) fn run(install: bool) -> Result<()> {
    let root = project_root();
    let started = Instant::now();
    // A fresh clone builds every target once: incremental caches only cost disk (5 GB of
    // the 23 GB a run used), and CI machines have run out of it while linking tests.
    std::env::set_var("CARGO_INCREMENTAL", "0");
    report_disk(&root);
    if install {
        install_deps()?;
    }
    step(
        "cargo fmt --check",
        &root,
        "cargo",
        &["fmt", "--all", "--check"],
    )?;
    step(
        "cargo clippy",
        &root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    step(
        "cargo test",
        &root,
        "cargo",
        &["test", "--workspace", "--locked"],
    )?;
    report_disk(&root);
    // Deterministic simulation: fixed seeds on both simulators, determinism, planted bugs.
    eprintln!("==> cargo xtask sim (fixed seeds, determinism, planted bugs)");
    let sim_started = Instant::now();
    crate::sim::ci()?;
    eprintln!("<== cargo xtask sim in {:.1?}", sim_started.elapsed());
    crate::sim::remove_build_dirs(&root)?;
    report_disk(&root);
    // weir and the Jepsen harness together, as the Jepsen step builds them (see
    // `jepsen::RELEASE_BUILD`): one resolution of features, so that step builds nothing.
    let release: Vec<&str> = (crate::jepsen::RELEASE_BUILD.iter().copied())
        .chain(["--locked"])
        .collect();
    step(
        "cargo build --release -p weir -p weir-jepsen",
        &root,
        "cargo",
        &release,
    )?;
    let weir_bin = root.join("target/release/weir");
    let mut compat = Command::new("python3");
    compat
        .args(["-m", "pytest", "-q", "tests/compat", "-m", "not soak"])
        .current_dir(&root)
        .env("WEIR_BIN", &weir_bin);
    // test_deploy.py runs `cargo xtask deploy`: this very binary, not a second build. Its
    // rolling upgrades start from the debug build (`cargo test` made it) and go to the
    // release build: an upgrade between two builds.
    if let Ok(xtask) = std::env::current_exe() {
        compat.env("XTASK_BIN", xtask);
    }
    let debug_weir = root.join("target/debug/weir");
    if debug_weir.is_file() {
        compat.env("WEIR_FROM_BIN", debug_weir);
    }
    run_command("real-client compatibility suite", compat)?;
    wasm_step(&root, &weir_bin)?;
    jepsen_step()?;
    report_disk(&root);
    eprintln!("xtask ci: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Prints the free space where the build goes, so a run that dies of a full disk says so.
fn report_disk(root: &Path) {
    if let Ok(output) = Command::new("df").arg("-h").arg(root).output() {
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
    }
}

/// The short Jepsen run (real cluster, kill + partition, ~60 s); a separate step so it can
/// be switched off on its own.
fn jepsen_step() -> Result<()> {
    // The harness's own tests (schedule, proxy, 1-node run, planted lost write) need the
    // `harness` feature, so `cargo test --workspace` does not run them.
    let root = project_root();
    let mut harness_tests = Command::new("cargo");
    harness_tests
        .args([
            "test",
            "--locked",
            "-p",
            "weir-jepsen",
            "--features",
            "harness",
        ])
        .current_dir(&root)
        .env("WEIR_BIN", root.join("target/release/weir"));
    run_command(
        "cargo test -p weir-jepsen --features harness",
        harness_tests,
    )?;
    eprintln!("==> cargo xtask jepsen (short CI run)");
    let started = Instant::now();
    crate::jepsen::ci()?;
    eprintln!("<== cargo xtask jepsen in {:.1?}", started.elapsed());
    Ok(())
}

/// The WASM client: its wasm-bindgen-test unit tests (Node runner), the npm package
/// (size budget checked), and the end-to-end suite under Node and headless Chromium.
fn wasm_step(root: &Path, weir_bin: &Path) -> Result<()> {
    crate::wasm::install_tools()?;
    let mut unit = Command::new("cargo");
    unit.args([
        "test",
        "-p",
        "weir-wasm",
        "-p",
        "weir-edge",
        "--target",
        "wasm32-unknown-unknown",
    ])
    .current_dir(root)
    .env(
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
        "wasm-bindgen-test-runner",
    );
    run_command("wasm-bindgen-test (weir-wasm, weir-edge)", unit)?;
    eprintln!("==> cargo xtask wasm");
    let sizes = crate::wasm::build()?;
    eprintln!("<== cargo xtask wasm: {sizes:?} (bytes gzipped)");
    let mut e2e = Command::new("python3");
    e2e.args(["-m", "pytest", "-q", "tests/wasm"])
        .current_dir(root)
        .env("WEIR_BIN", weir_bin);
    run_command("WASM client end-to-end suite (Node, Chromium)", e2e)
}

/// Installs what the test suites need and a fresh machine lacks: kcat, curl (the REST proxy
/// suite drives the proxy with it), openssh-server and systemd-analyze (apt), the Python
/// clients and pytest (pip), kafkajs (npm).
pub(crate) fn install_deps() -> Result<()> {
    let root = project_root();
    if !has_program("kcat") || !has_program("curl") {
        step("apt-get update", &root, "apt-get", &["update", "-q"])?;
        step(
            "apt-get install kcat curl",
            &root,
            "apt-get",
            &["install", "-y", "-q", "kcat", "curl"],
        )?;
    }
    step(
        "pip install (tests/compat/requirements.txt)",
        &root,
        "python3",
        &[
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            "tests/compat/requirements.txt",
        ],
    )?;
    // test_deploy.py's ssh target runs against a real sshd it starts on a free port.
    if !Path::new("/usr/sbin/sshd").exists() {
        step("apt-get update", &root, "apt-get", &["update", "-q"])?;
        step(
            "apt-get install openssh-server openssh-client",
            &root,
            "apt-get",
            &["install", "-y", "-q", "openssh-server", "openssh-client"],
        )?;
    }
    // xtask's unit test of the rendered systemd unit runs `systemd-analyze verify`.
    if !has_program("systemd-analyze") {
        step("apt-get update", &root, "apt-get", &["update", "-q"])?;
        step(
            "apt-get install systemd (systemd-analyze)",
            &root,
            "apt-get",
            &["install", "-y", "-q", "systemd"],
        )?;
    }
    // The WASM client's browser tests: Debian's Chromium and its WebDriver.
    if !has_program("chromium") || !has_program("chromedriver") {
        step("apt-get update", &root, "apt-get", &["update", "-q"])?;
        step(
            "apt-get install chromium chromium-driver",
            &root,
            "apt-get",
            &["install", "-y", "-q", "chromium", "chromium-driver"],
        )?;
    }
    crate::wasm::install_tools()?;
    let kafkajs = root.join("tests/compat/kafkajs");
    // Every package the Node tests import; a clone that installed an older lock gets the
    // new ones.
    let packages = ["kafkajs", "@kafkajs/confluent-schema-registry"];
    if (packages.iter()).any(|p| !kafkajs.join("node_modules").join(p).exists()) {
        step(
            "npm ci (kafkajs)",
            &kafkajs,
            "npm",
            &["ci", "--no-audit", "--no-fund"],
        )?;
    }
    Ok(())
}
