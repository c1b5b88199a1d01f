//! `weir group` and `GET /metrics` against a group made by the native client.
//!
//! Goal: the operator tools report what a real consumer group did: `group list` lists it,
//! `group describe` shows the live member (host, decoded assignment) and per-partition
//! committed offset, log end offset and lag; `reset-offsets` refuses a live group, plans
//! without committing by default and commits with `--execute`; `/metrics` serves
//! kafka_exporter's lag series with the right value; `group delete` removes it.
//! Method: spawn `weir serve --metrics 127.0.0.1:0`, make the group with weir-client
//! (consume 10 records per partition, commit, produce 5 more), then run the real binary's
//! subcommands and a raw HTTP GET, and compare their output with what the log holds.

use crate::common;

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use weir_client::{
    Admin, AutoOffsetReset, ClientConfig, Consumer, ConsumerConfig, GroupConfig, NewTopic,
    Producer, ProducerConfig, TopicPartition,
};
use weir_runtime::TokioRuntime;

use common::{run_cli_at, stdout_of, Process};

const TOPIC: &str = "cli-topic";
const GROUP: &str = "cli-group";
const PARTITIONS: i32 = 2;

struct Broker {
    process: Process,
    metrics: String,
    _data_dir: tempfile::TempDir,
}

fn start_broker() -> Broker {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = data_dir.path().join("weir.toml");
    std::fs::write(&config, "group.initial.rebalance.delay.ms = 0\n").expect("config");
    let process = Process::spawn_args([
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--metrics".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--data-dir".as_ref(),
        data_dir.path().join("data").as_os_str(),
    ]);
    let metrics = (process.announced("weir metrics on http://"))
        .map(|rest| rest.trim_end_matches("/metrics").to_owned())
        .unwrap_or_default();
    assert!(
        !process.address.is_empty() && !metrics.is_empty(),
        "weir did not start"
    );
    Broker {
        process,
        metrics,
        _data_dir: data_dir,
    }
}

fn scrape(address: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).expect("connect metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: weir\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

async fn produce(client: &ClientConfig, per_partition: usize) {
    let config = ProducerConfig {
        client: client.clone(),
        ..ProducerConfig::default()
    };
    let producer = Producer::connect(TokioRuntime::new(2), config)
        .await
        .expect("producer");
    let mut pending = Vec::new();
    for partition in 0..PARTITIONS {
        for index in 0..per_partition {
            let value = Some(Bytes::from(index.to_string()));
            pending.push(producer.send(TOPIC, Some(partition), None, value, Vec::new()));
        }
    }
    for delivery in pending {
        delivery.await.expect("delivered");
    }
}

/// Row of `group describe` for a partition, split on whitespace.
fn describe_row(output: &str, partition: i32) -> Vec<String> {
    let row = output
        .lines()
        .find(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells.len() >= 6 && cells[1] == TOPIC && cells[2] == partition.to_string()
        })
        .unwrap_or_else(|| panic!("no row for partition {partition} in\n{output}"));
    row.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_cli_and_metrics_report_a_real_group() {
    let broker = start_broker();
    let bootstrap = broker.process.address.as_str();
    let client = ClientConfig::with_bootstrap(bootstrap.to_owned());
    let admin = Admin::connect(TokioRuntime::new(1), client.clone())
        .await
        .expect("admin");
    admin
        .create_topic(NewTopic::new(TOPIC, PARTITIONS, 1))
        .await
        .expect("create topic");
    produce(&client, 10).await;

    // A member reads the 20 records and commits offset 10 on both partitions.
    let config = ConsumerConfig {
        client: client.clone(),
        auto_offset_reset: AutoOffsetReset::Earliest,
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::connect(TokioRuntime::new(3), config)
        .await
        .expect("consumer");
    let group = GroupConfig {
        enable_auto_commit: false,
        ..GroupConfig::new(GROUP)
    };
    consumer
        .subscribe(group, vec![TOPIC.to_owned()])
        .await
        .expect("subscribe");
    let mut read = 0;
    for _ in 0..100 {
        read += consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll")
            .len();
        if read >= 20 {
            break;
        }
    }
    assert_eq!(read, 20);
    consumer.commit().await.expect("commit");
    produce(&client, 5).await;

    // Live group: list, describe (member, host, decoded assignment, lag 5), reset refused.
    let listed = stdout_of(&run_cli_at(bootstrap, &["group", "list"]));
    assert!(listed.lines().any(|line| line == GROUP), "{listed}");
    let described = stdout_of(&run_cli_at(bootstrap, &["group", "describe", GROUP]));
    assert!(described.contains("STATE Stable"), "{described}");
    assert!(described.contains("/127.0.0.1"), "{described}");
    assert!(described.contains("cli-topic-0,cli-topic-1"), "{described}");
    for partition in 0..PARTITIONS {
        let row = describe_row(&described, partition);
        assert_eq!(&row[3..6], ["10", "15", "5"], "{described}");
    }
    let refused = run_cli_at(
        bootstrap,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            TOPIC,
            "--to-earliest",
            "--execute",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("inactive"));

    // /metrics: kafka_exporter's series with the same numbers.
    let metrics = scrape(&broker.metrics);
    for line in [
        "kafka_consumergroup_lag{consumergroup=\"cli-group\",topic=\"cli-topic\",\
         partition=\"0\"} 5",
        "kafka_consumergroup_current_offset{consumergroup=\"cli-group\",topic=\"cli-topic\",\
         partition=\"1\"} 10",
        "kafka_consumergroup_lag_sum{consumergroup=\"cli-group\",topic=\"cli-topic\"} 10",
        "kafka_consumergroup_members{consumergroup=\"cli-group\"} 1",
        "kafka_topic_partition_current_offset{topic=\"cli-topic\",partition=\"1\"} 15",
        "kafka_topic_partition_oldest_offset{topic=\"cli-topic\",partition=\"0\"} 0",
        "kafka_topic_partitions{topic=\"cli-topic\"} 2",
        "kafka_brokers 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
    // The state machine's busy time: it handled the produces, joins and commits above.
    let busy = metrics
        .lines()
        .find_map(|l| l.strip_prefix("weir_state_machine_busy_seconds_total "))
        .and_then(|value| value.parse::<f64>().ok());
    assert!(
        busy.is_some_and(|busy| busy > 0.0),
        "weir_state_machine_busy_seconds_total missing or zero in\n{metrics}"
    );

    // Empty group: a dry run commits nothing; --execute does; offsets are clamped.
    consumer.close().await.expect("close");
    let plan = stdout_of(&run_cli_at(
        bootstrap,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            TOPIC,
            "--to-earliest",
        ],
    ));
    assert!(
        plan.contains("NEW-OFFSET") && plan.contains("Dry run"),
        "{plan}"
    );
    let committed = admin
        .list_group_offsets(GROUP, None)
        .await
        .expect("offsets");
    assert_eq!(committed[&TopicPartition::new(TOPIC, 0)], 10);
    stdout_of(&run_cli_at(
        bootstrap,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            "cli-topic:1",
            "--to-offset",
            "99",
        ],
    ));
    let executed = stdout_of(&run_cli_at(
        bootstrap,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            "cli-topic:1",
            "--to-offset",
            "99",
            "--execute",
        ],
    ));
    assert!(executed.contains("Committed"), "{executed}");
    stdout_of(&run_cli_at(
        bootstrap,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            "cli-topic:0",
            "--to-datetime",
            "1970-01-01T00:00:00Z",
            "--execute",
        ],
    ));
    let committed = admin
        .list_group_offsets(GROUP, None)
        .await
        .expect("offsets");
    assert_eq!(committed[&TopicPartition::new(TOPIC, 0)], 0);
    assert_eq!(
        committed[&TopicPartition::new(TOPIC, 1)],
        15,
        "clamped to the log end"
    );
    let described = stdout_of(&run_cli_at(bootstrap, &["group", "describe", GROUP]));
    assert!(described.contains("has no active members"), "{described}");
    assert_eq!(&describe_row(&described, 0)[3..6], ["0", "15", "15"]);

    // Delete, then it is gone from the list.
    let deleted = stdout_of(&run_cli_at(bootstrap, &["group", "delete", GROUP]));
    assert!(deleted.contains("successful"), "{deleted}");
    let listed = stdout_of(&run_cli_at(bootstrap, &["group", "list"]));
    assert!(!listed.lines().any(|line| line == GROUP), "{listed}");
}
