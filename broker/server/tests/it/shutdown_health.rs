//! SIGTERM and the health endpoints of a real `weir serve` process (issue 16, item 3).
//!
//! Goal: `/healthz` and `/readyz` answer on the metrics address (200 `ok`, 200 `ready`
//! once the node serves; unknown paths 404, other methods 405); SIGTERM makes a single
//! node report that it had nobody to hand leaderships to, exit 0 and keep what it
//! acknowledged; with `controlled.shutdown.enable = false` (in the file, or
//! `WEIR_CONTROLLED_SHUTDOWN_ENABLE=false` in the environment, which overrides the file) it
//! says so and exits 0 too.
//! Method: spawn the binary with `--metrics 127.0.0.1:0`, speak raw HTTP/1.1 to it, produce
//! with acks=all through the test client, `kill -TERM` it, read its last stdout lines and
//! exit status, restart it on the same data directory and fetch the records back.
// A test drives a real process from outside: real clocks and sleeps are what it has.
#![allow(clippy::disallowed_methods)]

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{batch, Client};

/// A `weir serve` child whose stdout stays readable after startup.
struct Served {
    child: Child,
    stdout: BufReader<ChildStdout>,
    address: String,
    metrics: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path, config: &str) -> Served {
    serve_env(data_dir, config, &[])
}

fn serve_env(data_dir: &Path, config: &str, env: &[(&str, &str)]) -> Served {
    let config_path = data_dir.with_extension("toml");
    std::fs::write(&config_path, config).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .args(["--gateway", "off", "--data-dir"])
        .arg(data_dir)
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn weir");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let (mut address, mut metrics) = (String::new(), String::new());
    let mut line = String::new();
    while address.is_empty() {
        line.clear();
        if stdout.read_line(&mut line).expect("read startup line") == 0 {
            let _ = child.kill();
            panic!("weir exited before its startup line");
        }
        if let Some(rest) = line.trim_end().strip_prefix("weir metrics on http://") {
            metrics = rest.trim_end_matches("/metrics").to_owned();
        }
        if let Some(rest) = line.strip_prefix("weir listening on ") {
            address = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    }
    assert!(!metrics.is_empty(), "no metrics line");
    Served {
        child,
        stdout,
        address,
        metrics,
    }
}

/// `(status code, body)` of `METHOD path` on `addr`.
fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: weir\r\n\r\n").expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = (response.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

/// SIGTERM `served`; its remaining stdout lines once it exited, and whether it exited 0.
fn terminate(mut served: Served) -> (Vec<String>, bool) {
    let pid = served.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = served.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "weir did not exit within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    served.stdout.read_to_string(&mut rest).expect("stdout");
    let lines = rest.lines().map(str::to_owned).collect();
    (lines, status.success())
}

fn wait_ready(metrics: &str) {
    let started = Instant::now();
    loop {
        let (status, body) = http(metrics, "GET", "/readyz");
        if status == 200 {
            assert_eq!(body, "ready\n");
            return;
        }
        assert_eq!(status, 503, "{body}");
        assert!(body.starts_with("not ready: "), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not ready within 20 s: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_endpoints_and_sigterm_of_a_single_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let served = serve(&data, "");
    assert_eq!(
        http(&served.metrics, "GET", "/healthz"),
        (200, "ok\n".into())
    );
    wait_ready(&served.metrics);
    assert_eq!(http(&served.metrics, "HEAD", "/readyz").0, 200);
    assert_eq!(http(&served.metrics, "GET", "/nope").0, 404);
    assert_eq!(http(&served.metrics, "POST", "/readyz").0, 405);
    let mut client = Client::connect(&served.address);
    let created = client.create_topic("t", 1);
    assert!(created.topics[0].error.is_ok(), "{created:?}");
    let (error, base) = client.produce("t", -1, batch("kept", 5));
    assert_eq!((error, base), (0, 0));

    let (lines, success) = terminate(served);
    assert!(success, "exit status not 0; stdout {lines:?}");
    assert!(
        lines.iter().any(|l| l
            .starts_with("weir controlled shutdown: no other live broker to hand leaderships to")),
        "{lines:?}"
    );

    // What it acknowledged is there after a restart on the same data directory.
    let served = serve(&data, "");
    wait_ready(&served.metrics);
    let mut client = Client::connect(&served.address);
    let records = client.fetch_all("t", 5);
    let values: Vec<_> = (records.iter())
        .map(|r| r.value.clone().unwrap_or_default())
        .collect();
    assert_eq!(values.len(), 5, "{values:?}");
    assert_eq!(&values[0][..], b"kept-0");
}

#[test]
fn sigterm_without_controlled_shutdown_still_exits_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = serve(
        &dir.path().join("data"),
        "controlled.shutdown.enable = false\n",
    );
    wait_ready(&served.metrics);
    let (lines, success) = terminate(served);
    assert!(success, "exit status not 0; stdout {lines:?}");
    assert_eq!(lines, vec!["weir shutdown: controlled shutdown disabled"]);
}

// Goal: the same switch from the environment (`WEIR_` + the key, dots as underscores), as a
// container sets it, overriding the file.
#[test]
fn controlled_shutdown_switch_from_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [("WEIR_CONTROLLED_SHUTDOWN_ENABLE", "false")];
    let served = serve_env(
        &dir.path().join("data"),
        "controlled.shutdown.enable = true\n",
        &env,
    );
    wait_ready(&served.metrics);
    let (lines, success) = terminate(served);
    assert!(success, "exit status not 0; stdout {lines:?}");
    assert_eq!(lines, vec!["weir shutdown: controlled shutdown disabled"]);
}

/// `weir serve` on `data_dir` with `config`, expected to refuse to start: its stderr.
fn refused_start(data_dir: &Path, config: &str) -> String {
    let config_path = data_dir.with_extension("refused.toml");
    std::fs::write(&config_path, config).expect("config");
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--listen", "127.0.0.1:0", "--gateway", "off"])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run weir");
    assert!(
        !output.status.success(),
        "started on a foreign data directory"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// Goal: a data directory remembers its cluster and node (`meta.properties`, written at the
// first start): a start with another cluster.id or node.id, or over a directory of a newer
// on-disk format, refuses with a message saying so and leaves the directory as it was.
#[test]
fn a_data_directory_of_another_cluster_or_node_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let served = serve(&data, "cluster.id = \"blue\"\nnode.id = 4\n");
    wait_ready(&served.metrics);
    let (_, success) = terminate(served);
    assert!(success);
    let properties = std::fs::read_to_string(data.join("meta.properties")).expect("written");
    assert!(properties.contains("cluster.id=blue"), "{properties}");

    let stderr = refused_start(&data, "cluster.id = \"green\"\nnode.id = 4\n");
    assert!(
        stderr.contains("belongs to cluster \"blue\"") && stderr.contains("\"green\""),
        "{stderr}"
    );
    let stderr = refused_start(&data, "cluster.id = \"blue\"\nnode.id = 5\n");
    assert!(stderr.contains("belongs to node 4"), "{stderr}");
    // The version line whatever it holds (1, or 2 for a directory of several shards).
    let newer: String = (properties.lines())
        .map(|line| match line.starts_with("version=") {
            true => "version=99\n".to_owned(),
            false => format!("{line}\n"),
        })
        .collect();
    assert_ne!(newer, properties, "the version line was found");
    std::fs::write(data.join("meta.properties"), &newer).expect("write");
    let stderr = refused_start(&data, "cluster.id = \"blue\"\nnode.id = 4\n");
    assert!(stderr.contains("on-disk format version 99"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(data.join("meta.properties")).expect("kept"),
        newer
    );
    // Put back, the right ids start again.
    std::fs::write(data.join("meta.properties"), &properties).expect("write");
    let served = serve(&data, "cluster.id = \"blue\"\nnode.id = 4\n");
    wait_ready(&served.metrics);
}
