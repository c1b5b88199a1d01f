//! `weir cluster describe`, `weir topic describe` and the cluster flags of `weir serve`.
//!
//! Goal: the operator tools print what the broker reports (cluster id, controller, brokers
//! with their advertised address; per partition leader, leader epoch, replicas and ISR;
//! per topic its cleanup policy and per partition its size, from DescribeLogDirs),
//! `--bootstrap` is accepted as the short spelling, and inconsistent cluster flags are
//! refused at start naming the flag. Method: spawn the real binary (single node, no
//! `--voters`: exactly the pre-cluster broker), run its subcommands and compare their
//! output with the broker's own startup line and the topic we created.

use crate::common;

use common::{batch, field, fields, run_cli, stdout_of, Client, Process};
use weir_wire::domain::log_dirs::{DescribeLogDirsRequest, VOLUME_BYTES_UNKNOWN};
use weir_wire::domain::{ApiRequest, ApiResponse};

fn start_broker(data_dir: &tempfile::TempDir) -> Process {
    Process::spawn_args([
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--gateway".as_ref(),
        "off".as_ref(),
        "--data-dir".as_ref(),
        data_dir.path().join("data").as_os_str(),
    ])
}

#[test]
fn cluster_and_topic_describe_on_a_single_node() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let broker = start_broker(&data_dir);
    let (host, port) = broker.address.rsplit_once(':').expect("host:port");

    let text = stdout_of(&run_cli(&[
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

    let created = run_cli(&[
        "topic",
        "create",
        "described",
        "--partitions",
        "3",
        "--bootstrap",
        &broker.address,
    ]);
    stdout_of(&created);
    let stored = batch("sized", 5);
    let mut client = Client::connect(&broker.address);
    assert_eq!(client.produce("described", -1, stored.clone()), (0, 0));
    // DescribeLogDirs over real frames at every served version: one directory, the data
    // directory's absolute path, the three partitions with partition 0 holding the batch.
    for version in 1..=4 {
        let request = ApiRequest::DescribeLogDirs(DescribeLogDirsRequest { topics: None });
        let ApiResponse::DescribeLogDirs(response) = client.request(35, version, &request) else {
            panic!("not a DescribeLogDirs answer");
        };
        assert_eq!(response.results.len(), 1, "v{version}: {response:?}");
        let dir = &response.results[0];
        let data = data_dir.path().join("data");
        assert_eq!(dir.log_dir, data.display().to_string(), "v{version}");
        assert_eq!(dir.total_bytes, VOLUME_BYTES_UNKNOWN, "v{version}");
        let topic = (dir.topics.iter())
            .find(|t| t.name == "described")
            .expect("the topic is stored here");
        let sizes: Vec<(i32, i64)> = (topic.partitions.iter())
            .map(|p| (p.partition, p.partition_size))
            .collect();
        assert_eq!(
            sizes,
            vec![(0, stored.len() as i64), (1, 0), (2, 0)],
            "v{version}"
        );
    }
    let text = stdout_of(&run_cli(&[
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
    assert_eq!(field(&topic, "CleanupPolicy"), "delete", "{text}");
    for (index, line) in lines[1..].iter().enumerate() {
        let partition = fields(line);
        assert_eq!(field(&partition, "Partition"), index.to_string(), "{text}");
        assert_eq!(field(&partition, "Leader"), "1", "{text}");
        let epoch: i32 = field(&partition, "LeaderEpoch").parse().expect("epoch");
        assert!(epoch >= 0, "{text}");
        assert_eq!(field(&partition, "Replicas"), "1", "{text}");
        assert_eq!(field(&partition, "Isr"), "1", "{text}");
        let size = if index == 0 { stored.len() } else { 0 };
        assert_eq!(field(&partition, "Size"), size.to_string(), "{text}");
    }
}

/// `weir cluster elect-leaders` asks the controller for a preferred election of every
/// partition; on a single node every leader already is its preferred replica, so the
/// answer (ELECTION_NOT_NEEDED per partition) is success with nothing moved. The deploy
/// suite (tests/compat/test_deploy.py) checks real moves on 3 nodes.
#[test]
fn elect_leaders_with_nothing_to_move() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let broker = start_broker(&data_dir);
    stdout_of(&run_cli(&[
        "topic",
        "create",
        "elected",
        "--partitions",
        "2",
        "--bootstrap",
        &broker.address,
    ]));
    let text = stdout_of(&run_cli(&[
        "cluster",
        "elect-leaders",
        "--bootstrap",
        &broker.address,
    ]));
    assert_eq!(text, "Moved: 0\n");
}

#[test]
fn cluster_flags_are_checked_at_start() {
    // --voters without --controller-listen: refused before anything is bound.
    let output = run_cli(&[
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
    let output = run_cli(&[
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
