//! `weir cluster quorum describe|add-controller|remove-controller` against real processes.
//!
//! Goal: an operator grows a 3-voter cluster to 4 voters and shrinks it again with the CLI
//! alone, without restarting anything, and refused changes exit non-zero naming Kafka's
//! error. Method: spawn four `weir serve` processes on loopback (nodes 1-3 voters, node 4
//! a broker with the same `--voters`), wait until `quorum describe` shows a leader and node
//! 4 as an observer, add node 4 through node 4 itself (forwarded to the controller), check
//! it votes (the CLI itself retries while the controller answers "later"), remove node 1,
//! check the set; then add an existing voter (DUPLICATE_VOTER) and remove an unknown one
//! (VOTER_NOT_FOUND). A single node describes its quorum of one and refuses a voter that
//! is no registered broker (INVALID_REQUEST).

// Driving real processes from a test: wall-clock polling is the point here.
#![allow(clippy::disallowed_methods)]

use crate::common;

use std::time::{Duration, Instant};

use common::{field, fields, free_port, run_cli, Process};

/// How long the cluster may take to elect a controller and register every broker.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

struct Node {
    process: Process,
    controller: String,
    _data_dir: tempfile::TempDir,
}

fn start_node(id: i32, listen_port: u16, controller_port: u16, voters: &str) -> Node {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let controller = format!("127.0.0.1:{controller_port}");
    let process = Process::spawn_args([
        "--gateway".as_ref(),
        "off".as_ref(),
        "--node-id".as_ref(),
        id.to_string().as_ref(),
        "--listen".as_ref(),
        format!("127.0.0.1:{listen_port}").as_ref(),
        "--controller-listen".as_ref(),
        controller.as_ref(),
        "--voters".as_ref(),
        voters.as_ref(),
        "--data-dir".as_ref(),
        data_dir.path().join("data").as_os_str(),
    ]);
    Node {
        process,
        controller,
        _data_dir: data_dir,
    }
}

/// `quorum describe` through `bootstrap`: the leader and `(node, status)` per replica.
fn quorum(bootstrap: &str) -> Option<(i32, Vec<(i32, String)>)> {
    let output = run_cli(&["cluster", "quorum", "describe", "--bootstrap", bootstrap]);
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text.lines();
    let header = fields(lines.next()?);
    let leader: i32 = field(&header, "LeaderId").parse().ok()?;
    let replicas = lines
        .map(fields)
        .map(|f| {
            (
                field(&f, "Node").parse().unwrap_or(-1),
                field(&f, "Status").to_owned(),
            )
        })
        .collect();
    Some((leader, replicas))
}

/// Polls `quorum describe` until `ready` holds for it.
fn wait_for_quorum(bootstrap: &str, ready: impl Fn(i32, &[(i32, String)]) -> bool) {
    let started = Instant::now();
    while started.elapsed() < SETTLE_TIMEOUT {
        if let Some((leader, replicas)) = quorum(bootstrap) {
            if leader >= 0 && ready(leader, &replicas) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "quorum never reached the expected state: {:?}",
        quorum(bootstrap)
    );
}

fn voters(replicas: &[(i32, String)]) -> Vec<i32> {
    let mut ids: Vec<i32> = (replicas.iter())
        .filter(|(_, status)| status != "Observer")
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn controllers_are_added_and_removed_with_the_cli() {
    let ports: Vec<(u16, u16)> = (0..4).map(|_| (free_port(), free_port())).collect();
    let voter_list = (1..=3)
        .map(|id| format!("{id}@127.0.0.1:{}", ports[id - 1].1))
        .collect::<Vec<_>>()
        .join(",");
    let nodes: Vec<Node> = (1..=4)
        .map(|id| start_node(id as i32, ports[id - 1].0, ports[id - 1].1, &voter_list))
        .collect();
    let observer_4 = |_: i32, replicas: &[(i32, String)]| {
        voters(replicas) == [1, 2, 3] && replicas.iter().any(|(id, s)| *id == 4 && s == "Observer")
    };
    // Through node 4: it answers once it knows the controller (it forwards describes too).
    wait_for_quorum(&nodes[3].process.address, observer_4);

    let add = run_cli(&[
        "cluster",
        "quorum",
        "add-controller",
        "--id",
        "4",
        "--endpoint",
        &nodes[3].controller,
        "--bootstrap",
        &nodes[3].process.address,
    ]);
    let stdout = String::from_utf8_lossy(&add.stdout);
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    assert!(stdout.contains("Added controller 4"), "{stdout}");
    let (_, replicas) = quorum(&nodes[1].process.address).expect("quorum after the add");
    assert_eq!(voters(&replicas), [1, 2, 3, 4], "{replicas:?}");

    let remove = run_cli(&[
        "cluster",
        "quorum",
        "remove-controller",
        "--id",
        "1",
        "--bootstrap",
        &nodes[2].process.address,
    ]);
    assert!(
        remove.status.success(),
        "{}",
        String::from_utf8_lossy(&remove.stderr)
    );
    wait_for_quorum(&nodes[3].process.address, |leader, replicas| {
        leader != 1 && voters(replicas) == [2, 3, 4]
    });

    let duplicate = run_cli(&[
        "cluster",
        "quorum",
        "add-controller",
        "--id",
        "2",
        "--endpoint",
        &nodes[1].controller,
        "--bootstrap",
        &nodes[3].process.address,
    ]);
    assert!(!duplicate.status.success());
    let stderr = String::from_utf8_lossy(&duplicate.stderr);
    assert!(stderr.contains("DUPLICATE_VOTER"), "{stderr}");
    let unknown = run_cli(&[
        "cluster",
        "quorum",
        "remove-controller",
        "--id",
        "9",
        "--bootstrap",
        &nodes[3].process.address,
    ]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("VOTER_NOT_FOUND"), "{stderr}");
}

#[test]
fn a_single_node_is_a_quorum_of_one() {
    let (listen, controller) = (free_port(), free_port());
    let data_dir = tempfile::tempdir().expect("temp dir");
    let node = Node {
        process: Process::spawn_args([
            "--gateway".as_ref(),
            "off".as_ref(),
            "--listen".as_ref(),
            format!("127.0.0.1:{listen}").as_ref(),
            "--data-dir".as_ref(),
            data_dir.path().join("data").as_os_str(),
        ]),
        controller: format!("127.0.0.1:{controller}"),
        _data_dir: data_dir,
    };
    // A single node is its own one-voter quorum: it describes it, leader and only voter.
    let (leader, replicas) =
        quorum(&node.process.address).expect("a single node describes its quorum");
    assert_eq!(leader, 1);
    assert_eq!(replicas.len(), 1, "{replicas:?}");
    assert_eq!(replicas[0].0, 1, "{replicas:?}");
    // A voter that is no registered broker of this cluster is refused before it could
    // cost the quorum its majority.
    let output = run_cli(&[
        "cluster",
        "quorum",
        "add-controller",
        "--id",
        "2",
        "--endpoint",
        &node.controller,
        "--bootstrap",
        &node.process.address,
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INVALID_REQUEST"), "{stderr}");
}
