"""A real Weir cluster (issue #4): 3 and 5 `weir serve` processes on 127.0.0.1.

Goal: Kafka's replication promise holds with real processes and a real client: with RF=3,
min.insync.replicas=2 and acks=all, no acknowledged record is lost or reordered when the
partition leader is SIGKILLed and later restarted; the operator tools show the replicas
and the ISR; a 5-node cluster with two nodes down keeps accepting acks=all writes where
two replicas are alive, and refuses them where only one is; a consumer group keeps its
member and assignment (no rebalance) when its coordinator is SIGKILLed.

Method: start the nodes with the documented flags (`--node-id --listen --data-dir
--controller-listen --voters`), wait until every node's Metadata lists every broker, then
drive confluent-kafka (librdkafka) producers and consumers and SIGKILL processes. The
history of each record (produce call time, delivery time, outcome) is kept so the checks
can tell an acknowledged record from one that was still in flight across a failure.

Marker: `cluster` (run alone with `tests/compat/run.sh -m cluster`).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from weirtest import Broker, ck_admin, ck_consumer, ck_producer, free_port, serve_args_from_env, unique, wait_until, weir_bin

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(420)]

# Faster failure detection than the defaults, so the tests spend seconds, not minutes,
# waiting for fencing; rebalancing is off so leadership moves only when we cause it.
CLUSTER_CONFIG = """\
broker.heartbeat.interval.ms = 250
broker.session.timeout.ms = 3000
replica.lag.time.max.ms = 5000
auto.leader.rebalance.enable = false
"""
CLUSTER_FORM_TIMEOUT_S = 60.0
LEADER_MOVE_TIMEOUT_S = 60.0
ISR_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------------------
# The cluster harness


@dataclass
class ClusterNode(Broker):
    """One cluster member: a Broker whose command carries the cluster flags."""

    node_id: int = 0
    controller_port: int = field(default_factory=free_port)
    voters: str = ""

    @property
    def controller(self) -> str:
        return f"127.0.0.1:{self.controller_port}"

    def command(self) -> list[str]:
        cmd = [
            str(weir_bin()),
            "serve",
            "--node-id",
            str(self.node_id),
            "--listen",
            self.bootstrap,
            "--data-dir",
            str(self.data_dir),
            "--controller-listen",
            self.controller,
            "--voters",
            self.voters,
            "--gateway",
            "off",
        ]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd + serve_args_from_env()


class Cluster:
    """N nodes, all voters, started together; every one is killed at teardown."""

    def __init__(self, base: Path, size: int, config: str = CLUSTER_CONFIG):
        self.nodes: dict[int, ClusterNode] = {}
        for node_id in range(1, size + 1):
            root = base / f"node{node_id}"
            root.mkdir(parents=True, exist_ok=True)
            config_path = root / "weir.toml"
            config_path.write_text(config)
            self.nodes[node_id] = ClusterNode(
                data_dir=root / "data",
                log_path=root / "weir.log",
                config_path=config_path,
                node_id=node_id,
            )
        voters = ",".join(f"{n.node_id}@{n.controller}" for n in self.nodes.values())
        for node in self.nodes.values():
            node.voters = voters

    def start(self) -> "Cluster":
        # Start all before waiting on any: a node's "listening" line comes before the
        # quorum forms, so sequential starts do not deadlock.
        for node in self.nodes.values():
            node.start()
        return self

    def alive(self) -> list[ClusterNode]:
        return [n for n in self.nodes.values() if n.alive()]

    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.alive())

    def wait_formed(self, count: Optional[int] = None, timeout: float = CLUSTER_FORM_TIMEOUT_S) -> None:
        """Every live node's Metadata lists `count` (default: all) brokers and names a
        live controller (librdkafka's admin requests wait for one)."""
        want = len(self.nodes) if count is None else count

        def formed():
            for node in self.alive():
                md = ck_admin(node.bootstrap).list_topics(timeout=5)
                if len(md.brokers) != want or md.controller_id not in md.brokers:
                    return False
            return True

        wait_until(formed, timeout, f"every live node's Metadata to list {want} brokers and a controller", interval=0.25)

    def close(self) -> None:
        for node in self.nodes.values():
            node.kill9()


@pytest.fixture
def cluster_factory(tmp_path, request):
    clusters: list[Cluster] = []

    def make(size: int, config: str = CLUSTER_CONFIG) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(clusters)}", size, config=config)
        clusters.append(cluster)
        request.node._weir_brokers = [n for c in clusters for n in c.nodes.values()]
        return cluster.start()

    yield make
    for cluster in clusters:
        cluster.close()


def weir_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(weir_bin()), *args], capture_output=True, text=True, timeout=60)


def fields(line: str) -> dict[str, str]:
    """The `Key: value` fields of one tab-separated line of weir's describe output."""
    out = {}
    for part in line.strip().split("\t"):
        key, sep, value = part.partition(": ")
        if sep:
            out[key] = value
    return out


def ids(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def create_topic(cluster: Cluster, name: str, partitions: int, rf: int = 3, min_isr: int = 2) -> None:
    """Create through any node, then wait until every live node's Metadata shows every
    partition with a leader and a full ISR (metadata reaches nodes asynchronously)."""
    from confluent_kafka.admin import NewTopic

    admin = ck_admin(cluster.bootstrap())
    topic = NewTopic(name, num_partitions=partitions, replication_factor=rf, config={"min.insync.replicas": str(min_isr)})
    admin.create_topics([topic], operation_timeout=20, request_timeout=30)[name].result(timeout=40)

    def complete():
        for node in cluster.alive():
            md = ck_admin(node.bootstrap).list_topics(topic=name, timeout=5).topics.get(name)
            if md is None or md.error is not None or len(md.partitions) != partitions:
                return False
            if not all(p.leader >= 0 and len(p.isrs) == rf for p in md.partitions.values()):
                return False
        return True

    wait_until(complete, ISR_TIMEOUT_S, f"{name}: {partitions} partitions with a leader and {rf} in-sync replicas on every node")


def partition_state(bootstrap: str, topic: str, partition: int):
    """The partition's Metadata as some node reports it; raises (so wait_until retries)
    while that node does not know the partition."""
    md = ck_admin(bootstrap).list_topics(topic=topic, timeout=5).topics[topic]
    return md.partitions[partition]


# --------------------------------------------------------------------------------------
# Tests


def test_cluster_describe_and_topic_describe_show_replicas_and_isr(cluster_factory):
    """`weir cluster describe` lists 3 brokers and a controller among them; `weir topic
    describe` shows 3 replicas, a full ISR and a leader among the replicas, and agrees
    with what librdkafka's Metadata says."""
    cluster = cluster_factory(3)
    cluster.wait_formed()
    node = cluster.nodes[1]
    out = weir_cli("cluster", "describe", "--bootstrap", node.bootstrap)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    header = fields(lines[0])
    assert header["BrokerCount"] == "3", out.stdout
    brokers = {int(fields(line)["Broker"]): fields(line) for line in lines[1:]}
    assert sorted(brokers) == [1, 2, 3], out.stdout
    for node_id, b in brokers.items():
        assert (b["Host"], int(b["Port"])) == ("127.0.0.1", cluster.nodes[node_id].port), out.stdout
    assert int(header["ControllerId"]) in brokers, out.stdout

    topic = unique("described")
    create_topic(cluster, topic, partitions=3)
    out = weir_cli("topic", "describe", topic, "--bootstrap", node.bootstrap)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert fields(lines[0])["ReplicationFactor"] == "3", out.stdout
    md = ck_admin(node.bootstrap).list_topics(topic=topic, timeout=5).topics[topic]
    for line in lines[1:]:
        p = fields(line)
        replicas, isr, leader = ids(p["Replicas"]), ids(p["Isr"]), int(p["Leader"])
        assert sorted(replicas) == [1, 2, 3], out.stdout
        assert sorted(isr) == [1, 2, 3], out.stdout
        assert leader in replicas, out.stdout
        assert int(p["LeaderEpoch"]) >= 0, out.stdout
        rd = md.partitions[int(p["Partition"])]
        assert (rd.leader, sorted(rd.replicas), sorted(rd.isrs)) == (leader, sorted(replicas), sorted(isr)), out.stdout


@dataclass
class Attempt:
    """One produced value: when produce() was called, when its delivery report came."""

    value: bytes
    sent_at: float
    done_at: Optional[float] = None
    error: Optional[str] = None
    offset: int = -1


class AckedProducer:
    """A producer thread writing v-000000, v-000001, ... to one partition, recording each
    value's outcome. acks=all, idempotence off, retries on, one request in flight (Kafka
    promises order for non-idempotent producers only then)."""

    def __init__(self, bootstrap: str, topic: str, partition: int = 0, rate_per_s: float = 200.0):
        self.topic = topic
        self.partition = partition
        self.interval = 1.0 / rate_per_s
        self.producer = ck_producer(
            bootstrap,
            **{
                "acks": "all",
                "enable.idempotence": False,
                "retries": 1_000_000,
                "retry.backoff.ms": 100,
                "max.in.flight.requests.per.connection": 1,
                "message.timeout.ms": 60_000,
                "request.timeout.ms": 5_000,
                "linger.ms": 5,
                "topic.metadata.refresh.interval.ms": 1_000,
            },
        )
        self.attempts: list[Attempt] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "AckedProducer":
        self._thread.start()
        return self

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            attempt = Attempt(value=b"v-%06d" % i, sent_at=time.monotonic())
            self.attempts.append(attempt)

            def report(err, msg, attempt=attempt):
                attempt.done_at = time.monotonic()
                if err is not None:
                    attempt.error = str(err)
                else:
                    attempt.offset = msg.offset()

            while True:
                try:
                    self.producer.produce(self.topic, value=attempt.value, partition=self.partition, on_delivery=report)
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.producer.poll(0)
            i += 1
            time.sleep(self.interval)

    def acked(self) -> list[Attempt]:
        return [a for a in self.attempts if a.done_at is not None and a.error is None]

    def stop(self, timeout: float = 90.0) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        remaining = self.producer.flush(timeout)
        assert remaining == 0, f"{remaining} records still undelivered {timeout}s after the producer stopped"


def read_partition(bootstrap: str, topic: str, partition: int, timeout: float = 60, **conf) -> list[tuple[int, bytes]]:
    """(offset, value) of every record from the log start to the high watermark; `conf` adds
    client settings (security.protocol, ssl.*)."""
    from confluent_kafka import KafkaError, TopicPartition

    c = ck_consumer(bootstrap, **conf)
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=20, cached=False)
        c.assign([TopicPartition(topic, partition, 0)])
        out: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + timeout
        position = 0
        while position < high:
            assert time.monotonic() < deadline, f"reading {topic}[{partition}] timed out at {position} of {high}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consumer error: {m.error()}")
            out.append((m.offset(), m.value()))
            position = m.offset() + 1
        return out
    finally:
        c.close()


def check_acked_history(attempts: list[Attempt], log: list[tuple[int, bytes]], faults: list[tuple[float, float]]) -> dict:
    """Every acknowledged value is in the log; acknowledged values keep their production
    order; a value appears more than once only if its produce was in flight across a fault
    window (a retry of a request whose first attempt may have been appended). Returns
    counts for the report."""
    positions: dict[bytes, list[int]] = {}
    for index, (_, value) in enumerate(log):
        positions.setdefault(value, []).append(index)
    acked = [a for a in attempts if a.done_at is not None and a.error is None]
    lost = [a.value for a in acked if a.value not in positions]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:10]}"
    firsts = [positions[a.value][0] for a in acked]
    reordered = [(acked[i].value, acked[i + 1].value) for i in range(len(firsts) - 1) if firsts[i] > firsts[i + 1]]
    assert not reordered, f"acknowledged records out of order: {reordered[:10]}"
    by_value = {a.value: a for a in attempts}
    unknown = [v for v in positions if v not in by_value]
    assert not unknown, f"records nobody produced: {unknown[:10]}"

    def in_flight_across_fault(a: Attempt) -> bool:
        done = a.done_at if a.done_at is not None else float("inf")
        return any(a.sent_at <= end and done >= start for start, end in faults)

    duplicated = [v for v, at in positions.items() if len(at) > 1]
    unexcused = [v for v in duplicated if not in_flight_across_fault(by_value[v])]
    assert not unexcused, f"duplicates of records not in flight across a failure: {unexcused[:10]}"
    return {
        "produced": len(attempts),
        "acked": len(acked),
        "failed": sum(1 for a in attempts if a.error is not None),
        "duplicated (retries across a failure)": len(duplicated),
    }


def test_leader_sigkill_and_restart_lose_no_acked_record(cluster_factory):
    """RF=3, min.insync.replicas=2, acks=all, idempotence off: SIGKILL the partition
    leader mid-stream, keep producing, restart it, keep producing; every acknowledged record
    is read back, in order, and only records in flight across a failure may repeat."""
    cluster = cluster_factory(3)
    cluster.wait_formed()
    topic = unique("failover")
    create_topic(cluster, topic, partitions=1)
    producer = AckedProducer(cluster.bootstrap(), topic).start()
    faults: list[tuple[float, float]] = []
    try:
        wait_until(lambda: len(producer.acked()) >= 200, 60, "200 acknowledged records before the kill")
        leader_id = wait_until(lambda: max(partition_state(cluster.bootstrap(), topic, 0).leader, 0), 30, f"the leader of {topic}[0]")
        victim = cluster.nodes[leader_id]
        killed_at = time.monotonic()
        victim.kill9()
        survivors = ",".join(n.bootstrap for n in cluster.alive())
        new_leader = wait_until(
            lambda: (lambda p: p.leader if p.leader not in (-1, leader_id) else None)(partition_state(survivors, topic, 0)),
            LEADER_MOVE_TIMEOUT_S,
            f"a new leader of {topic}[0] after SIGKILL of node {leader_id}",
        )
        acked_before = len(producer.acked())
        wait_until(lambda: len(producer.acked()) >= acked_before + 200, 60, "200 acknowledged records under the new leader")
        faults.append((killed_at, time.monotonic()))
        restarted_at = time.monotonic()
        victim.start()
        wait_until(
            lambda: sorted(partition_state(cluster.bootstrap(), topic, 0).isrs) == [1, 2, 3],
            ISR_TIMEOUT_S,
            f"node {leader_id} back in the ISR of {topic}[0] (leader {new_leader})",
        )
        acked_before = len(producer.acked())
        wait_until(lambda: len(producer.acked()) >= acked_before + 200, 60, "200 acknowledged records after the restart")
        faults.append((restarted_at, time.monotonic()))
    finally:
        producer.stop()
    log = read_partition(cluster.bootstrap(), topic, 0)
    counts = check_acked_history(producer.attempts, log, faults)
    print(f"history: {counts}")
    assert counts["acked"] >= 600


def test_five_nodes_two_down_keep_accepting_acks_all(cluster_factory):
    """5 nodes, RF=3, min.insync.replicas=2: with two nodes SIGKILLed (the leader of
    partition 0 and the active controller or another node outside its replicas), every
    partition with two live replicas accepts acks=all writes that are read back; one with a
    single live replica does not acknowledge any (NOT_ENOUGH_REPLICAS)."""
    cluster = cluster_factory(5)
    cluster.wait_formed()
    topic = unique("two-down")
    partitions = 10
    create_topic(cluster, topic, partitions=partitions)
    p0 = wait_until(lambda: partition_state(cluster.bootstrap(), topic, 0), 30, f"{topic}[0] in Metadata")
    out = weir_cli("cluster", "describe", "--bootstrap", cluster.nodes[1].bootstrap)
    assert out.returncode == 0, out.stderr
    controller = int(fields(out.stdout.splitlines()[0])["ControllerId"])
    victims = [p0.leader]
    outside = [n for n in cluster.nodes if n not in p0.replicas]
    victims.append(controller if controller in outside else outside[0])
    for node_id in victims:
        cluster.nodes[node_id].kill9()
    survivors = ",".join(n.bootstrap for n in cluster.alive())
    cluster.wait_formed(count=3)
    md = ck_admin(survivors).list_topics(topic=topic, timeout=10).topics[topic]
    live = {p: [r for r in md.partitions[p].replicas if r not in victims] for p in range(partitions)}
    writable = [p for p in range(partitions) if len(live[p]) >= 2]
    starved = [p for p in range(partitions) if len(live[p]) < 2]
    assert 0 in writable, f"partition 0 lost two replicas: {live[0]}"

    producer = ck_producer(survivors, **{"acks": "all", "enable.idempotence": False, "retries": 1_000_000, "message.timeout.ms": 60_000})
    results: dict[bytes, Optional[str]] = {}

    def report(err, msg):
        results[msg.value()] = None if err is None else str(err)

    sent = {p: [b"p%d-%04d" % (p, i) for i in range(100)] for p in writable}
    for p, values in sent.items():
        for value in values:
            producer.produce(topic, value=value, partition=p, on_delivery=report)
            producer.poll(0)
    assert producer.flush(90) == 0, "acks=all writes were not delivered with 2 of 5 nodes down"
    failed = {v: e for v, e in results.items() if e is not None}
    assert not failed, f"acks=all writes failed with two replicas alive: {list(failed.items())[:5]}"
    for p, values in sent.items():
        read = [v for _, v in read_partition(survivors, topic, p)]
        assert read == values, f"{topic}[{p}] read back {len(read)} records, sent {len(values)}"

    if starved:
        # Short timeout: librdkafka retries NOT_ENOUGH_REPLICAS until the message expires.
        strict = ck_producer(survivors, **{"acks": "all", "enable.idempotence": False, "message.timeout.ms": 5_000})
        outcome: list[Optional[str]] = []
        strict.produce(topic, value=b"must-not-ack", partition=starved[0], on_delivery=lambda err, msg: outcome.append(None if err is None else str(err)))
        strict.flush(30)
        assert outcome and outcome[0] is not None, f"{topic}[{starved[0]}] acknowledged acks=all with one live replica {live[starved[0]]}"
        assert re.search(r"NOT_ENOUGH_REPLICAS|timed out|MSG_TIMED_OUT", outcome[0]), outcome[0]


def test_added_broker_takes_a_reassigned_replica_and_preferred_leadership(cluster_factory):
    """Goal: a broker added to a running cluster (a non-voter: a Raft learner) becomes a
    replica through AlterPartitionReassignments, catches up into the ISR, and becomes the
    leader through a preferred ElectLeaders; no record is lost on the way.
    Method: 3 voters, an RF=3 topic with records; start node 4 with the same voters; move
    the partition to [4, a, b] with kafka-python's admin client (which speaks both APIs);
    wait for the reassignment to finish; elect the preferred leader; read everything back
    from the new leader and produce more with acks=all."""
    from kafka import KafkaAdminClient
    from kafka.structs import TopicPartition as KpTopicPartition

    cluster = cluster_factory(3)
    cluster.wait_formed()
    topic = unique("grow")
    create_topic(cluster, topic, partitions=1)
    producer = ck_producer(cluster.bootstrap(), **{"acks": "all"})
    for i in range(200):
        producer.produce(topic, value=f"v{i}".encode())
    assert producer.flush(30) == 0

    # A fourth node: same voters, not one of them.
    root = Path(cluster.nodes[1].data_dir).parent.parent / "node4"
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / "weir.toml"
    config_path.write_text(CLUSTER_CONFIG)
    node4 = ClusterNode(data_dir=root / "data", log_path=root / "weir.log", config_path=config_path, node_id=4)
    node4.voters = cluster.nodes[1].voters
    cluster.nodes[4] = node4
    node4.start()
    cluster.wait_formed(count=4)

    before = partition_state(cluster.nodes[1].bootstrap, topic, 0)
    kept = [r for r in before.replicas if r != before.leader][:2]
    target = [4, *kept]
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap().split(","), request_timeout_ms=30000)
    try:
        admin.alter_partition_reassignments({KpTopicPartition(topic, 0): target})

        def moved():
            state = partition_state(cluster.nodes[1].bootstrap, topic, 0)
            return sorted(state.replicas) == sorted(target) and sorted(state.isrs) == sorted(target)

        wait_until(moved, ISR_TIMEOUT_S, f"{topic}-0 to move to {target} with all in sync")
        ongoing = admin.list_partition_reassignments()
        assert not ongoing.get(KpTopicPartition(topic, 0)), ongoing
        state = partition_state(cluster.nodes[1].bootstrap, topic, 0)
        assert state.replicas[0] == 4, state.replicas

        # Preferred election: node 4 (first replica) leads.
        from confluent_kafka import TopicPartition as CkTopicPartition
        from confluent_kafka import ElectionType

        ck = ck_admin(cluster.bootstrap())
        ck.elect_leaders(ElectionType.PREFERRED, [CkTopicPartition(topic, 0)]).result(timeout=30)
        # Metadata reaches every node asynchronously: wait until all of them name node 4.
        wait_until(
            lambda: all(partition_state(n.bootstrap, topic, 0).leader == 4 for n in cluster.alive()),
            LEADER_MOVE_TIMEOUT_S,
            "every node to name node 4 the leader",
        )
    finally:
        admin.close()

    # librdkafka's watermark query does not retry a leader that only just took over.
    reads: list = []

    def read_all():
        reads.append(read_partition(cluster.bootstrap(), topic, 0))
        return True

    wait_until(read_all, LEADER_MOVE_TIMEOUT_S, f"{topic}-0 to be readable from its new leader")
    log = reads[-1]
    assert [v for _, v in log] == [f"v{i}".encode() for i in range(200)]
    producer = ck_producer(cluster.bootstrap(), **{"acks": "all"})
    for i in range(200, 300):
        producer.produce(topic, value=f"v{i}".encode())
    assert producer.flush(30) == 0
    log = read_partition(cluster.bootstrap(), topic, 0)
    assert [v for _, v in log] == [f"v{i}".encode() for i in range(300)]


def test_follower_below_the_leaders_log_start_resets_and_rejoins(cluster_factory):
    """Goal (issue 12): a follower whose log ends below the leader's log start (retention
    deleted what it missed while it was down) empties its log, replicates from the
    leader's log start and rejoins the ISR; before, it retried the out-of-range fetch
    forever and the partition stayed under-replicated.

    Method: 3 nodes checking retention every 200 ms; a topic (RF=3, min.insync.replicas=2)
    with 1 KiB segments and retention.bytes of two segments; SIGKILL a follower, produce
    ~30 segments in flushed waves until the leader's log start passes everything the
    follower held, restart it; the ISR must become full again, and once the follower is
    made the only other ISR member able to lead (the third replica killed), the records
    from the log start on are read back intact through it."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition
    from confluent_kafka.admin import NewTopic

    from weirtest import ck_produce, ck_read

    config = CLUSTER_CONFIG + '"log.retention.check.interval.ms" = 200\n'
    cluster = cluster_factory(3, config)
    cluster.wait_formed()
    topic = unique("reset")
    admin = ck_admin(cluster.bootstrap())
    new = NewTopic(
        topic,
        num_partitions=1,
        replication_factor=3,
        config={"min.insync.replicas": "2", "segment.bytes": "1024", "retention.bytes": "2048"},
    )
    admin.create_topics([new], operation_timeout=20, request_timeout=30)[topic].result(timeout=40)
    wait_until(
        lambda: sorted(partition_state(cluster.bootstrap(), topic, 0).isrs) == [1, 2, 3],
        ISR_TIMEOUT_S,
        f"{topic}[0] with a full ISR",
    )
    state = wait_until(lambda: partition_state(cluster.bootstrap(), topic, 0), 30, f"{topic}[0] on some node")
    follower_id = next(r for r in state.replicas if r != state.leader)
    follower = cluster.nodes[follower_id]
    producer = ck_producer(
        cluster.bootstrap(), acks="all", **{"linger.ms": 0, "compression.type": "none", "enable.idempotence": True}
    )
    n = 0

    def wave(count: int) -> None:
        nonlocal n
        msgs = []
        for _ in range(count):
            msgs.append({"value": (b"%06d-" % n).ljust(200, b"z"), "partition": 0})
            n += 1
        ds = ck_produce(producer, topic, msgs)
        assert all(d.error is None for d in ds), [d.error for d in ds if d.error][:3]

    wave(20)
    follower_end = n
    follower.kill9()
    tp = TopicPartition(topic, 0)

    def log_start() -> int:
        low, _ = ck_consumer(cluster.bootstrap()).get_watermark_offsets(tp, timeout=5)
        return low

    for _ in range(60):
        wave(20)
        if log_start() > follower_end:
            break
    low = wait_until(lambda: (lambda s: s if s > follower_end else None)(log_start()), 60, "the log start past the follower's end")
    follower.start()
    wait_until(
        lambda: sorted(partition_state(cluster.bootstrap(), topic, 0).isrs) == [1, 2, 3],
        ISR_TIMEOUT_S,
        f"node {follower_id} (reset below the log start {low}) back in the ISR of {topic}[0]",
    )
    # Leave the follower as the only other live replica: it leads, or it must take
    # writes as the leader's only in-sync follower; either way reads go through data
    # it replicated after the reset.
    third = next(r for r in (1, 2, 3) if r not in (follower_id, state.leader))
    cluster.nodes[state.leader].kill9()
    survivors = ",".join(x.bootstrap for x in cluster.alive())
    wait_until(
        lambda: partition_state(survivors, topic, 0).leader in (follower_id, third),
        LEADER_MOVE_TIMEOUT_S,
        f"a new leader of {topic}[0] among the survivors",
    )
    start, high = wait_until(
        lambda: (lambda w: w if w[1] >= n else None)(ck_consumer(survivors).get_watermark_offsets(tp, timeout=5)),
        60,
        "the survivors' high watermark to cover every acknowledged record",
    )
    recs = ck_read(survivors, topic, {0: OFFSET_BEGINNING}, until={0: high})
    assert [r.offset for r in recs] == list(range(recs[0].offset, high))
    assert all(r.value.startswith(b"%06d-" % r.offset) for r in recs), "a record's content moved"
    assert high == n


def test_consumer_group_keeps_its_assignment_when_the_coordinator_dies(cluster_factory):
    """A confluent-kafka consumer in a group on a 3-node cluster: SIGKILL the group's
    coordinator; the consumer keeps its member id and assignment (no rebalance callback:
    the new coordinator replayed the group's record and accepts its heartbeats and commits
    with the old generation), keeps consuming, and commits through the new coordinator."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    cluster = cluster_factory(3)
    cluster.wait_formed()
    topic, group = unique("gfailover"), unique("g")
    create_topic(cluster, topic, partitions=3)
    events: list[tuple[str, list[int]]] = []

    def note(kind):
        return lambda _consumer, parts: events.append((kind, sorted(p.partition for p in parts)))

    consumer = Consumer({
        "bootstrap.servers": cluster.bootstrap(),
        "group.id": group,
        "session.timeout.ms": 30000,
        "heartbeat.interval.ms": 500,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic], on_assign=note("assign"), on_revoke=note("revoke"), on_lost=note("lost"))
    seen: list[bytes] = []

    def consume_until(count: int, timeout: float, what: str) -> None:
        def enough():
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen.append(msg.value())
            return len(seen) >= count
        wait_until(enough, timeout, what, interval=0)

    def commit() -> bool:
        consumer.poll(0.1)
        try:
            results = consumer.commit(asynchronous=False)
        except KafkaException as exc:  # retried: the coordinator may be moving
            raise AssertionError(f"commit failed: {exc}") from exc
        return all(tp.error is None for tp in results)

    try:
        producer = ck_producer(cluster.bootstrap(), acks="all")
        for i in range(30):
            producer.produce(topic, value=f"a{i}".encode(), partition=i % 3)
        assert producer.flush(30) == 0
        consume_until(30, 60, "the first 30 records through the group")
        assert events == [("assign", [0, 1, 2])], events
        wait_until(commit, 30, "a commit through the first coordinator")
        member_id = consumer.memberid()
        admin = ck_admin(cluster.bootstrap())
        description = admin.describe_consumer_groups([group])[group].result(timeout=30)
        coordinator = description.coordinator.id
        assert [m.member_id for m in description.members] == [member_id]

        cluster.nodes[coordinator].kill9()
        survivors = cluster.bootstrap()
        producer = ck_producer(survivors, acks="all")
        for i in range(30):
            producer.produce(topic, value=f"b{i}".encode(), partition=i % 3)
        assert producer.flush(60) == 0
        consume_until(60, 90, "30 more records after the coordinator's SIGKILL")
        wait_until(commit, 60, "a commit through the new coordinator")

        survivors_admin = ck_admin(survivors)  # kept alive: a dropped handle fails its futures

        def moved():
            d = survivors_admin.describe_consumer_groups([group])[group].result(timeout=15)
            return d if d.coordinator.id != coordinator else None

        after = wait_until(moved, 60, "the group's new coordinator")
        assert [m.member_id for m in after.members] == [member_id]
        assert consumer.memberid() == member_id
        assert events == [("assign", [0, 1, 2])], f"a rebalance happened: {events}"
        committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
        assert sum(tp.offset for tp in committed) == 60
    finally:
        consumer.close()



def test_exactly_once_loop_across_coordinators_survives_the_group_coordinators_sigkill(cluster_factory, tmp_path):
    """A librdkafka consume-transform-produce loop (send_offsets_to_transaction) whose
    group and transactional id are coordinated by different brokers: the offsets go to the
    group's coordinator and commit with the transaction's marker. SIGKILL the group's
    coordinator mid-loop (restarting the loop if it gives up): every input still yields
    exactly one committed output, and the group's committed offset is the end of the
    input."""
    import json
    import sys

    from confluent_kafka import KafkaException, TopicPartition
    from test_transactions import EOS_LOOP, read_committed, values
    from weirtest import find_coordinator

    cluster = cluster_factory(3)
    cluster.wait_formed()
    src, dst = unique("eos-in"), unique("eos-out")
    create_topic(cluster, src, partitions=1)
    create_topic(cluster, dst, partitions=1)
    n = 60
    producer = ck_producer(cluster.bootstrap(), acks="all", **{"enable.idempotence": True})
    for i in range(n):
        producer.produce(src, value=f"{i}".encode(), partition=0)
    assert producer.flush(30) == 0
    any_node = next(iter(cluster.nodes.values())).bootstrap

    def coordinator_of(key: str, key_type: int) -> int:
        def found():
            error, node = find_coordinator(any_node, key, key_type)
            return node if error == 0 else None
        return wait_until(found, 60, f"the coordinator of {key}", interval=0.25)

    tid = unique("eos-tid")
    txn_at = coordinator_of(tid, 1)
    group, group_at = None, None
    for i in range(64):
        candidate = unique(f"eos-group{i}")
        at = coordinator_of(candidate, 0)
        if at != txn_at:
            group, group_at = candidate, at
            break
    assert group is not None, "no group name coordinated by another broker than the transaction"
    script = tmp_path / "eos_loop.py"
    script.write_text(EOS_LOOP)

    def start(slow: str):
        return subprocess.Popen([sys.executable, str(script), cluster.bootstrap(), src, dst, group, tid, slow],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    loop = start("1")
    try:
        committed, batches = 0, 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (committed > 0 and batches >= 3):
            line = loop.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            committed = event.get("committed", committed)
            batches += "batch" in event
        assert committed > 0, f"loop never committed across coordinators: {loop.stderr.read()[-2000:] if loop.poll() is not None else ''}"
        cluster.nodes[group_at].kill9()
        got: list[bytes] = []
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if loop.poll() is not None:  # gave up on an abortable error: a new instance resumes
                loop = start("0")
            try:
                got = values(read_committed(cluster.bootstrap(), dst, n, timeout=20))
            except KafkaException:  # the output's leader may be failing over
                time.sleep(0.5)
                continue
            if len(got) >= n:
                break
            time.sleep(0.5)
    finally:
        loop.kill()
        loop.wait(10)
    expected = sorted(f"out-{i}".encode() for i in range(n))
    assert sorted(got) == expected, f"{len(got)} outputs, duplicates={len(got) - len(set(got))}"
    consumer = ck_consumer(cluster.bootstrap(), **{"group.id": group})
    try:
        def at_end():
            offsets = consumer.committed([TopicPartition(src, 0)], timeout=10)
            return offsets if offsets[0].offset == n else None
        wait_until(at_end, 30, f"the group's committed offset to reach {n}")
    finally:
        consumer.close()
