"""The WASM client against a real 3-node Weir cluster, through ONE node's gateway.

Goal: the gateway forwards what its node does not serve (issue #7 item 1): produces and
fetches of partitions led by other brokers go to their leaders, group requests to the
group's coordinator, so a client connected to a single node reads and writes the whole
topic. 300 keyed records produced by the client to an RF=3 topic with 3 partitions (led
by different nodes) are read back through a group consumer on the same gateway exactly
once and in order per key (the group's coordinator is another node too), and
librdkafka reads the same records from the cluster.
Method: start 3 `weir serve` processes with the documented cluster flags plus
`--gateway` on node 1, wait until every node's Metadata lists all brokers and each
partition has a leader, then drive tests/wasm/node_client.mjs (Node) and page.html
(Chromium) against node 1's gateway. Every wait is bounded; the cluster is SIGKILLed at
the end of the module.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests/compat"))

from confluent_kafka import Consumer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from weirtest import free_port, unique, wait_until  # noqa: E402
from test_cluster import Cluster, ClusterNode  # noqa: E402

from test_wasm_e2e import ChromiumDriver, NodeDriver  # noqa: E402

RECORDS = 300
KEYS = 16
PARTITIONS = 3
NODES = 3
CONFIG = """\
broker.heartbeat.interval.ms = 250
broker.session.timeout.ms = 3000
group.consumer.heartbeat.interval.ms = 500
"""


class GatewayNode(ClusterNode):
    """A cluster node with its gateway on a free port (node 1 only)."""

    gateway_port: int = 0

    def command(self) -> list[str]:
        cmd = super().command()
        if self.gateway_port:
            cmd[cmd.index("--gateway") + 1] = f"127.0.0.1:{self.gateway_port}"
        return cmd

    @property
    def gateway(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("weir-wasm-cluster")
    cluster = Cluster(base, NODES, config=CONFIG)
    for node_id, node in list(cluster.nodes.items()):
        gateway = GatewayNode(
            data_dir=node.data_dir,
            log_path=node.log_path,
            config_path=node.config_path,
            node_id=node.node_id,
            controller_port=node.controller_port,
            voters=node.voters,
        )
        if node_id == 1:
            gateway.gateway_port = free_port()
        cluster.nodes[node_id] = gateway
    cluster.start()
    try:
        cluster.wait_formed()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(params=["node", "chromium"])
def driver(request, tmp_path):
    driver = NodeDriver(tmp_path) if request.param == "node" else ChromiumDriver(tmp_path)
    yield driver
    driver.close()


def create_spread_topic(cluster: Cluster) -> tuple[str, dict[int, int]]:
    """An RF=3 topic whose partitions all have leaders; returns it and the leaders."""
    topic = unique("wasm-cluster")
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 3)]).values():
        future.result(30)
    leaders: dict[int, int] = {}

    def led():
        # Node 1's own view matters: its gateway routes by it.
        md = AdminClient({"bootstrap.servers": cluster.nodes[1].bootstrap}).list_topics(
            topic, timeout=5
        )
        partitions = md.topics[topic].partitions
        if len(partitions) != PARTITIONS or any(p.leader < 0 for p in partitions.values()):
            return False
        leaders.clear()
        leaders.update({p.id: p.leader for p in partitions.values()})
        return True

    wait_until(led, 30, f"{topic}'s partitions to have leaders", interval=0.25)
    return topic, leaders


def remote_group(cluster: Cluster) -> tuple[str, int]:
    """A group name whose coordinator is not node 1, so heartbeats and commits are
    forwarded too (coordinators are chosen by hashing the name)."""
    admin = AdminClient({"bootstrap.servers": cluster.nodes[1].bootstrap})
    for _ in range(30):
        group = unique("wasm-cluster-group")
        described = admin.describe_consumer_groups([group])[group].result(10)
        if described.coordinator is not None and described.coordinator.id != 1:
            return group, described.coordinator.id
    raise AssertionError("every group name hashed to node 1's coordinator")


def read_all(cluster: Cluster, topic: str, count: int) -> list:
    """librdkafka reads `count` records from the cluster (and nothing more arrives)."""
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap(),
            "group.id": unique("reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records = []
    deadline = time.monotonic() + 30
    while len(records) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        records.append(message)
    extra = consumer.poll(1.0)
    consumer.close()
    assert extra is None, f"more records than produced: {extra.value()!r}"
    return records


def check_key_order(records: list[tuple[str, int]]) -> None:
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, seq in records:
        assert key == f"k-{seq % KEYS}"
        by_key[key].append(seq)
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"{key} out of order: {seqs}"


def test_one_gateway_serves_partitions_led_by_every_node(cluster, driver):
    # Goal: through node 1's gateway alone, the client writes all partitions (led by
    # different nodes) and a group consumer (whose coordinator is another node) reads them
    # back exactly once, in order per key; librdkafka sees the same records. Method:
    # produce 300 keyed records, consume them in one group on the same gateway, read them
    # with confluent-kafka.
    topic, leaders = create_spread_topic(cluster)
    assert set(leaders.values()) - {1}, f"every partition is led by the gateway's node: {leaders}"
    gateway = cluster.nodes[1].gateway

    report = driver.run_produce(gateway, topic, RECORDS, KEYS)
    assert report.get("produced") == RECORDS, report
    placed = report["placed"]
    assert {p["partition"] for p in placed} == set(range(PARTITIONS)), placed[:5]

    group, coordinator = remote_group(cluster)
    handle = driver.start_consumer(gateway, group, topic)
    seen: list[dict] = []

    def complete():
        for line in driver.reports(handle):
            assert "error" not in line, line
            seen.extend(line.get("records", []))
        return len(seen) >= RECORDS

    try:
        wait_until(complete, 45, f"{RECORDS} records through node 1's gateway")
    except AssertionError as error:
        per_partition = defaultdict(int)
        for r in seen:
            per_partition[r["partition"]] += 1
        raise AssertionError(
            f"{error}; got {dict(per_partition)}, leaders {leaders}, coordinator {coordinator}"
        ) from None
    driver.stop_consumer(handle)
    time.sleep(0.5)
    complete()
    seqs = sorted(int(r["seq"]) for r in seen)
    assert seqs == list(range(RECORDS)), "exactly once through the gateway"
    for r in seen:
        assert r["value"] == f"v-{r['seq']}"
    # Per partition in offset order, then per key in send order.
    by_partition: dict[int, list[dict]] = defaultdict(list)
    for r in seen:
        by_partition[r["partition"]].append(r)
    for records in by_partition.values():
        offsets = [r["offset"] for r in records]
        assert offsets == sorted(offsets)
    check_key_order([(r["key"], int(r["seq"])) for r in seen])

    # librdkafka reads the same records, at the partitions and offsets the client reported.
    records = read_all(cluster, topic, RECORDS)
    assert sorted(int(m.value().decode()[2:]) for m in records) == list(range(RECORDS))
    where = {int(dict(m.headers())["seq"].decode()): (m.partition(), m.offset()) for m in records}
    for seq, p in enumerate(placed):
        assert where[seq] == (p["partition"], p["offset"]), f"record {seq} moved"
    ordered = sorted(records, key=lambda m: (m.partition(), m.offset()))
    check_key_order([(m.key().decode(), int(dict(m.headers())["seq"].decode())) for m in ordered])
