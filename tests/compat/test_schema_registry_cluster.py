"""The schema registry in a 3-node cluster (issue 17 items 3 and 5): every broker serves it
from the replicated `_schemas` topic, writes from any broker never hand out one id twice,
and the registry keeps working when the leader of `_schemas` is SIGKILLed.

Method: a 3-node cluster (test_cluster's harness), each node with its own registry
listener; register through different nodes (one after another, then concurrently), read
everything back through every node, SIGKILL the leader of `_schemas`-0, register through
the survivors and read back.

Marker: `cluster`.
"""

from __future__ import annotations

import json
import threading

import pytest
import requests

from test_cluster import CLUSTER_CONFIG, Cluster
from weirtest import ck_admin, free_port, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

HEADERS = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def record(name: str, fields: int) -> str:
    return json.dumps(
        {
            "type": "record",
            "name": name,
            "fields": [{"name": f"f{i}", "type": "int", "default": 0} for i in range(fields)],
        }
    )


def register(url: str, subject: str, schema: str) -> int:
    response = requests.post(f"{url}/subjects/{subject}/versions", json={"schema": schema}, headers=HEADERS, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["id"]


@pytest.fixture
def registries(tmp_path):
    cluster = Cluster(tmp_path / "cluster", 3)
    urls = {}
    for node_id, node in cluster.nodes.items():
        port = free_port()
        node.config_path.write_text(CLUSTER_CONFIG + f'"weir.schema.registry.listener" = "127.0.0.1:{port}"\n')
        urls[node_id] = f"http://127.0.0.1:{port}"
    cluster.start()
    try:
        cluster.wait_formed()
        yield cluster, urls
    finally:
        cluster.close()


def schemas_leader(cluster: Cluster) -> int:
    for node in cluster.alive():
        md = ck_admin(node.bootstrap).list_topics(topic="_schemas", timeout=5)
        topic = md.topics.get("_schemas")
        if topic is not None and topic.error is None and 0 in topic.partitions:
            return topic.partitions[0].leader
    return -1


def test_any_broker_writes_every_broker_reads_and_the_leader_dies(registries):
    cluster, urls = registries
    ids = {}
    # One after another, each through a different broker: each write fences the previous
    # writer's producer and must still see its records.
    for node_id, url in urls.items():
        ids[f"s{node_id}"] = register(url, f"s{node_id}", record(f"R{node_id}", node_id))
    assert len(set(ids.values())) == 3, ids

    # Concurrently through all three: still one id per distinct schema.
    results: dict[str, int] = {}
    errors: list[str] = []

    def write(node_id: int, index: int) -> None:
        subject = f"c{node_id}-{index}"
        try:
            results[subject] = register(urls[node_id], subject, record(f"C{node_id}x{index}", 1))
        except AssertionError as error:
            errors.append(str(error))

    threads = [threading.Thread(target=write, args=(n, i)) for n in urls for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    ids.update(results)
    assert len(set(ids.values())) == len(ids) == 12, ids

    # Every broker serves every schema by id, and every subject.
    def replicated(url: str) -> bool:
        subjects = requests.get(f"{url}/subjects", timeout=10).json()
        return sorted(subjects) == sorted(ids)

    for url in urls.values():
        wait_until(lambda url=url: replicated(url), 30, f"{url} to list every subject")
        for subject, schema_id in ids.items():
            got = requests.get(f"{url}/subjects/{subject}/versions/latest", timeout=10).json()
            assert got["id"] == schema_id, (url, subject, got)

    # `_schemas` has one partition on all three brokers (min(3, brokers) replicas).
    md = ck_admin(cluster.bootstrap()).list_topics(topic="_schemas", timeout=5)
    partitions = md.topics["_schemas"].partitions
    assert list(partitions) == [0]
    assert sorted(partitions[0].replicas) == [1, 2, 3]

    # SIGKILL the leader of `_schemas`-0; the survivors elect another and keep writing.
    leader = schemas_leader(cluster)
    assert leader in cluster.nodes, leader
    cluster.nodes[leader].kill9()
    survivors = [node_id for node_id in urls if node_id != leader]
    after = register(urls[survivors[0]], "after-failover", record("After", 2))
    assert after not in ids.values()
    assert after > max(ids.values())
    url = urls[survivors[1]]
    wait_until(
        lambda: requests.get(f"{url}/subjects/after-failover/versions/latest", timeout=10).status_code == 200,
        30,
        "the other survivor to serve the write made after the failover",
    )
    got = requests.get(f"{url}/schemas/ids/{ids['s1']}", timeout=10).json()
    assert json.loads(got["schema"])["name"] == "R1"
