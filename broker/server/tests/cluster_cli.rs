//! `weir cluster describe`, `weir topic describe` and the cluster flags of `weir serve`.
//!
//! Goal: the operator tools print what the broker reports (cluster id, controller, brokers
//! with their advertised address; per partition leader, leader epoch, replicas and ISR),
//! `--bootstrap` is accepted as the short spelling, and inconsistent cluster flags are
//! refused at start naming the flag. Method: spawn the real binary (single node, no
//! `--voters`: exactly the pre-cluster broker), run its subcommands and compare their
//! output with the broker's own startup line and the topic we created.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

struct Broker {
    child: Child,
    address: String,
    _data_dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

fn start_broker() -> Broker {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--listen", "127.0.0.1:0", "--gateway", "off"])
        .arg("--data-dir")
        .arg(data_dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn weir");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut address = String::new();
    for line in lines {
        let line = line.expect("startup line");
        if let Some(rest) = line.strip_prefix("weir listening on ") {
            address = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            break;
        }
    }
    assert!(!address.is_empty(), "no startup line");
    Broker {
        child,
        address,
        _data_dir: data_dir,
    }
}

fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .expect("run weir")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "weir failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `Key: value` fields of one tab-separated output line.
fn fields(line: &str) -> Vec<(String, String)> {
    line.split('\t')
        .filter(|field| !field.is_empty())
        .filter_map(|field| field.split_once(": "))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

#[test]
fn cluster_and_topic_describe_on_a_single_node() {
    let broker = start_broker();
    let (host, port) = broker.address.rsplit_once(':').expect("host:port");

    let text = stdout_of(&weir(&[
        "cluster",
        "describe",
        "--bootstrap",
        &broker.address,
    ]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let header = fields(lines[0]);
    assert!(!field(&header, "ClusterId").is_empty(), "{text}");
    assert_eq!(field(&header, "ControllerId"), "1", "{text}");
    assert_eq!(field(&header, "BrokerCount"), "1", "{text}");
    let broker_line = fields(lines[1]);
    assert_eq!(field(&broker_line, "Broker"), "1", "{text}");
    assert_eq!(field(&broker_line, "Host"), host, "{text}");
    assert_eq!(field(&broker_line, "Port"), port, "{text}");
    assert_eq!(field(&broker_line, "Controller"), "yes", "{text}");

    let created = weir(&[
        "topic",
        "create",
        "described",
        "--partitions",
        "3",
        "--bootstrap",
        &broker.address,
    ]);
    stdout_of(&created);
    let text = stdout_of(&weir(&[
        "topic",
        "describe",
        "described",
        "--bootstrap",
        &broker.address,
    ]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let topic = fields(lines[0]);
    assert_eq!(field(&topic, "PartitionCount"), "3", "{text}");
    assert_eq!(field(&topic, "ReplicationFactor"), "1", "{text}");
    for (index, line) in lines[1..].iter().enumerate() {
        let partition = fields(line);
        assert_eq!(field(&partition, "Partition"), index.to_string(), "{text}");
        assert_eq!(field(&partition, "Leader"), "1", "{text}");
        let epoch: i32 = field(&partition, "LeaderEpoch").parse().expect("epoch");
        assert!(epoch >= 0, "{text}");
        assert_eq!(field(&partition, "Replicas"), "1", "{text}");
        assert_eq!(field(&partition, "Isr"), "1", "{text}");
    }
}

#[test]
fn cluster_flags_are_checked_at_start() {
    // --voters without --controller-listen: refused before anything is bound.
    let output = weir(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--voters",
        "1@127.0.0.1:1",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"--voters\""), "{stderr}");
    assert!(stderr.contains("--controller-listen"), "{stderr}");
    // A malformed voter list names the flag.
    let output = weir(&[
        "serve",
        "--voters",
        "1@nowhere",
        "--controller-listen",
        "a:1",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"--voters\""), "{stderr}");
}
