"""A real 3-node Weir cluster where everything is TLS (issue 15 item 1): the client
listener is SSL and the broker-to-broker (peer) links are SSL with mutual authentication
(`CONTROLLER:SSL`, client certificates required by default).

Goal: with RF=3, min.insync.replicas=2 and acks=all, confluent-kafka over SSL loses no
acknowledged record when the partition leader is SIGKILLed; the survivors keep accepting
writes and serving reads over TLS; the killed node restarts, redials its peers over mTLS
and rejoins the ISR.

Method: three `weir serve` processes configured only through weir.toml (`listeners`,
`controller.listener.names`, `listener.security.protocol.map`, `ssl.*`,
`controller.quorum.voters`), certificates from test_tls.py's per-module CA (one broker
certificate for localhost/127.0.0.1, used as server and client certificate). The history
checks are test_cluster.py's.

Marker: `cluster`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from test_cluster import (
    CLUSTER_CONFIG,
    ISR_TIMEOUT_S,
    LEADER_MOVE_TIMEOUT_S,
    Attempt,
    check_acked_history,
    read_partition,
)
from test_tls import Pki, ck_conf, pki  # noqa: F401  (pki is a fixture)
from weirtest import Broker, ck_admin, ck_producer, free_port, serve_args_from_env, unique, wait_until, weir_bin

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(420)]

FORM_TIMEOUT_S = 60.0


@dataclass
class TlsNode(Broker):
    """One cluster member whose listeners and voters all come from its weir.toml."""

    node_id: int = 0
    controller_port: int = field(default_factory=free_port)

    def command(self) -> list[str]:
        return [
            str(weir_bin()),
            "serve",
            "--node-id",
            str(self.node_id),
            "--data-dir",
            str(self.data_dir),
            "--gateway",
            "off",
            "--config",
            str(self.config_path),
        ] + serve_args_from_env()


class TlsCluster:
    def __init__(self, base: Path, size: int, pki: Pki):
        self.pki = pki
        self.nodes: dict[int, TlsNode] = {}
        for node_id in range(1, size + 1):
            root = base / f"node{node_id}"
            root.mkdir(parents=True, exist_ok=True)
            self.nodes[node_id] = TlsNode(
                data_dir=root / "data",
                log_path=root / "weir.log",
                config_path=root / "weir.toml",
                node_id=node_id,
            )
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes.values())
        for node in self.nodes.values():
            node.config_path.write_text(
                f"""
node.id = {node.node_id}
controller.quorum.voters = "{voters}"
listeners = "SSL://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
listener.security.protocol.map = "SSL:SSL,CONTROLLER:SSL"
controller.listener.names = "CONTROLLER"
ssl.keystore.type = "PEM"
ssl.keystore.location = "{pki.broker_keystore}"
ssl.truststore.type = "PEM"
ssl.truststore.location = "{pki.ca}"
{CLUSTER_CONFIG}
"""
            )

    def start(self) -> "TlsCluster":
        for node in self.nodes.values():
            node.start()
        return self

    def alive(self) -> list[TlsNode]:
        return [n for n in self.nodes.values() if n.alive()]

    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.alive())

    def conf(self, bootstrap: str | None = None) -> dict:
        return ck_conf(bootstrap or self.bootstrap(), self.pki)

    def admin(self, bootstrap: str | None = None):
        conf = self.conf(bootstrap)
        return ck_admin(conf.pop("bootstrap.servers"), **conf)

    def wait_formed(self) -> None:
        want = len(self.nodes)

        def formed():
            for node in self.alive():
                md = self.admin(node.bootstrap).list_topics(timeout=5)
                if len(md.brokers) != want or md.controller_id not in md.brokers:
                    return False
            return True

        wait_until(formed, FORM_TIMEOUT_S, f"every node's Metadata over SSL to list {want} brokers", interval=0.25)

    def partition(self, topic: str, bootstrap: str | None = None):
        return self.admin(bootstrap).list_topics(topic=topic, timeout=5).topics[topic].partitions[0]

    def close(self) -> None:
        for node in self.nodes.values():
            node.kill9()


@pytest.fixture
def tls_cluster(tmp_path, request, pki):  # noqa: F811
    cluster = TlsCluster(tmp_path / "cluster", 3, pki)
    request.node._weir_brokers = list(cluster.nodes.values())
    yield cluster.start()
    cluster.close()


class TlsAckedProducer:
    """test_cluster.AckedProducer over SSL: one value at a time in flight, acks=all,
    idempotence off, each value's outcome recorded."""

    def __init__(self, conf: dict, topic: str, rate_per_s: float = 200.0):
        self.topic = topic
        self.interval = 1.0 / rate_per_s
        conf = dict(conf)
        self.producer = ck_producer(
            conf.pop("bootstrap.servers"),
            **conf,
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
        self._thread.start()

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
                    self.producer.produce(self.topic, value=attempt.value, partition=0, on_delivery=report)
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


def read_ssl_partition(conf: dict, topic: str) -> list[tuple[int, bytes]]:
    """test_cluster's reader of partition 0, over SSL with the cluster's client settings."""
    conf = dict(conf)
    return read_partition(conf.pop("bootstrap.servers"), topic, 0, **conf)


def test_tls_cluster_leader_sigkill_loses_no_acked_record(tls_cluster: TlsCluster):
    # Goal and method: see the module docstring. Reads during the outage prove consumers are
    # served over SSL by the survivors; the final read and the ISR prove the restarted node
    # replicated over mTLS again.
    from confluent_kafka.admin import NewTopic

    cluster = tls_cluster
    cluster.wait_formed()
    topic = unique("tls-failover")
    new_topic = NewTopic(topic, num_partitions=1, replication_factor=3, config={"min.insync.replicas": "2"})
    admin = cluster.admin()  # kept alive until the result is in
    admin.create_topics([new_topic], operation_timeout=20, request_timeout=30)[topic].result(timeout=40)
    wait_until(
        lambda: all(len(cluster.partition(topic, n.bootstrap).isrs) == 3 for n in cluster.alive()),
        ISR_TIMEOUT_S,
        f"{topic}[0] with 3 in-sync replicas on every node",
    )
    producer = TlsAckedProducer(cluster.conf(), topic)
    faults: list[tuple[float, float]] = []
    try:
        wait_until(lambda: len(producer.acked()) >= 200, 60, "200 acknowledged records before the kill")
        leader_id = wait_until(lambda: max(cluster.partition(topic).leader, 0), 30, f"the leader of {topic}[0]")
        victim = cluster.nodes[leader_id]
        killed_at = time.monotonic()
        victim.kill9()
        survivors = cluster.bootstrap()
        new_leader = wait_until(
            lambda: (lambda p: p.leader if p.leader not in (-1, leader_id) else None)(cluster.partition(topic, survivors)),
            LEADER_MOVE_TIMEOUT_S,
            f"a new leader of {topic}[0] after SIGKILL of node {leader_id}",
        )
        acked_before = len(producer.acked())
        wait_until(lambda: len(producer.acked()) >= acked_before + 200, 60, "200 acknowledged records under the new leader")
        during = read_ssl_partition(cluster.conf(survivors), topic)
        assert len(during) >= acked_before + 200, f"read {len(during)} records from the survivors"
        faults.append((killed_at, time.monotonic()))
        restarted_at = time.monotonic()
        victim.start()
        wait_until(
            lambda: sorted(cluster.partition(topic).isrs) == [1, 2, 3],
            ISR_TIMEOUT_S,
            f"node {leader_id} back in the ISR of {topic}[0] over mTLS (leader {new_leader})",
        )
        acked_before = len(producer.acked())
        wait_until(lambda: len(producer.acked()) >= acked_before + 200, 60, "200 acknowledged records after the restart")
        faults.append((restarted_at, time.monotonic()))
    finally:
        producer.stop()
    log = read_ssl_partition(cluster.conf(), topic)
    counts = check_acked_history(producer.attempts, log, faults)
    print(f"history over TLS: {counts}")
    assert counts["acked"] >= 600
    # No peer was ever refused: every node presents a certificate the others trust.
    for node in cluster.nodes.values():
        assert "peer TLS handshake from" not in node.log_text(), node.log_path
