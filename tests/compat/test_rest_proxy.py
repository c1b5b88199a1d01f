"""The REST proxy (Confluent's REST API v2/v3 inside `weir serve`), driven over real HTTP
(python `requests` and curl) against a real `weir` process and cross-checked with
confluent-kafka (librdkafka).

Goal: what a Confluent REST proxy user relies on works unchanged: v3 administration
(clusters, brokers, topics, partitions, configs, consumer groups), v3 produce (single and
streamed), v2 produce and v2 consumer instances; records written over HTTP are read by
librdkafka with the same keys, partitions (murmur2, as Java's partitioner) and headers and
the other way round; an HTTP consumer and a librdkafka consumer share a group; every error
path answers Confluent's status and error code and the broker keeps serving; in a 3-node
cluster, a broker that leads none of the partitions takes HTTP produces.
Method: each test talks to a broker started with `weir.rest.proxy.listener` on a free port
and checks answers field by field; waits are bounded polls (weirtest.wait_until).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from weirtest import (
    ck_consumer,
    ck_create_topic,
    ck_produce,
    ck_producer,
    ck_read,
    free_port,
    unique,
    wait_until,
)

V2 = "application/vnd.kafka.v2+json"
V2_JSON = "application/vnd.kafka.json.v2+json"
V2_BINARY = "application/vnd.kafka.binary.v2+json"
V2_AVRO = "application/vnd.kafka.avro.v2+json"
V2_PROTOBUF = "application/vnd.kafka.protobuf.v2+json"
V2_JSONSCHEMA = "application/vnd.kafka.jsonschema.v2+json"
INSTANCE_TIMEOUT_MS = 3000
HTTP_TIMEOUT_S = 30


def rest_config(port: int, extra: str = "", registry: str = "off") -> str:
    # The schema registry is off unless a test asks for it: its default address (8081) is
    # taken or free depending on other tests, so each test says which it runs with.
    return (
        f'"weir.rest.proxy.listener" = "127.0.0.1:{port}"\n'
        f'"weir.schema.registry.listener" = "{registry}"\n'
        f'"weir.rest.consumer.instance.timeout.ms" = {INSTANCE_TIMEOUT_MS}\n'
        '"weir.gateway.listener" = "off"\n'
        "group.initial.rebalance.delay.ms = 100\n"
        "group.consumer.heartbeat.interval.ms = 500\n"
        "group.consumer.session.timeout.ms = 6000\n" + extra
    )


class Rest:
    """A REST proxy's base URL and the cluster id its v3 paths use."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.cluster_id = wait_until(self._cluster_id, 15, "the REST proxy to answer /v3/clusters")
        self.v3 = f"{self.base}/v3/clusters/{self.cluster_id}"

    def _cluster_id(self) -> str:
        answer = requests.get(f"{self.base}/v3/clusters", timeout=5)
        answer.raise_for_status()
        return answer.json()["data"][0]["cluster_id"]

    def produce(self, topic: str, record: dict) -> requests.Response:
        return requests.post(f"{self.v3}/topics/{topic}/records", json=record, timeout=HTTP_TIMEOUT_S)

    def healthy(self) -> bool:
        return requests.get(f"{self.base}/v3/clusters", timeout=5).status_code == 200


@pytest.fixture
def rest_broker(broker_factory):
    port = free_port()
    broker = broker_factory.new(config=rest_config(port), name="rest")
    return broker, Rest(port)


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def assert_error(answer: requests.Response, status: int, error_code: int) -> dict:
    assert answer.status_code == status, (answer.status_code, answer.text)
    body = answer.json()
    assert body["error_code"] == error_code, body
    assert body["message"], body
    return body


# --------------------------------------------------------------------------------------
# v3 administration


def test_v3_clusters_brokers_topics_partitions_configs(rest_broker):
    broker, rest = rest_broker
    clusters = requests.get(f"{rest.base}/v3/clusters", timeout=5).json()
    assert clusters["kind"] == "KafkaClusterList"
    cluster = clusters["data"][0]
    assert cluster["kind"] == "KafkaCluster"
    assert cluster["metadata"]["self"] == rest.v3
    assert requests.get(rest.v3, timeout=5).json()["cluster_id"] == rest.cluster_id
    assert_error(requests.get(f"{rest.base}/v3/clusters/not-this-one", timeout=5), 404, 404)

    brokers = requests.get(f"{rest.v3}/brokers", timeout=5).json()["data"]
    assert [(b["broker_id"], b["port"]) for b in brokers] == [(1, broker.port)]
    assert requests.get(f"{rest.v3}/brokers/1", timeout=5).json()["host"] == "127.0.0.1"
    assert_error(requests.get(f"{rest.v3}/brokers/7", timeout=5), 404, 404)

    topic = unique("rest-admin")
    created = requests.post(
        f"{rest.v3}/topics",
        json={"topic_name": topic, "partitions_count": 3, "replication_factor": 1,
              "configs": [{"name": "retention.ms", "value": "86400000"}]},
        timeout=HTTP_TIMEOUT_S,
    )
    assert created.status_code == 201, created.text
    assert created.json()["partitions_count"] == 3
    again = requests.post(f"{rest.v3}/topics", json={"topic_name": topic}, timeout=HTTP_TIMEOUT_S)
    assert_error(again, 400, 40002)

    got = requests.get(f"{rest.v3}/topics/{topic}", timeout=5).json()
    assert (got["kind"], got["topic_name"], got["partitions_count"], got["replication_factor"]) == (
        "KafkaTopic", topic, 3, 1)
    listed = [t["topic_name"] for t in requests.get(f"{rest.v3}/topics", timeout=5).json()["data"]]
    assert topic in listed

    partitions = requests.get(f"{rest.v3}/topics/{topic}/partitions", timeout=5).json()["data"]
    assert [p["partition_id"] for p in partitions] == [0, 1, 2]
    replicas = requests.get(f"{rest.v3}/topics/{topic}/partitions/2/replicas", timeout=5).json()["data"]
    assert [(r["broker_id"], r["is_leader"], r["is_in_sync"]) for r in replicas] == [(1, True, True)]
    assert_error(requests.get(f"{rest.v3}/topics/{topic}/partitions/9", timeout=5), 404, 40402)

    config = requests.get(f"{rest.v3}/topics/{topic}/configs/retention.ms", timeout=5).json()
    assert (config["value"], config["source"], config["is_default"]) == (
        "86400000", "DYNAMIC_TOPIC_CONFIG", False)
    names = {c["name"] for c in requests.get(f"{rest.v3}/topics/{topic}/configs", timeout=5).json()["data"]}
    assert {"retention.ms", "cleanup.policy"} <= names

    put = requests.put(f"{rest.v3}/topics/{topic}/configs/retention.ms", json={"value": "1000"}, timeout=10)
    assert put.status_code == 204, put.text
    assert requests.get(f"{rest.v3}/topics/{topic}/configs/retention.ms", timeout=5).json()["value"] == "1000"
    batch = requests.post(
        f"{rest.v3}/topics/{topic}/configs:alter",
        json={"data": [{"name": "retention.ms", "operation": "DELETE"},
                       {"name": "max.message.bytes", "value": "500000"}]},
        timeout=10,
    )
    assert batch.status_code == 204, batch.text
    after = {c["name"]: c for c in requests.get(f"{rest.v3}/topics/{topic}/configs", timeout=5).json()["data"]}
    assert after["retention.ms"]["is_default"], after["retention.ms"]
    assert after["max.message.bytes"]["value"] == "500000"
    # librdkafka's admin client sees the same configs the proxy changed.
    from confluent_kafka.admin import ConfigResource

    described = ck_admin_configs(broker.bootstrap, ConfigResource.Type.TOPIC, topic)
    assert described["max.message.bytes"] == "500000"
    # DELETE of one config puts it back to its default.
    reset = requests.delete(f"{rest.v3}/topics/{topic}/configs/max.message.bytes", timeout=10)
    assert reset.status_code == 204, reset.text
    assert requests.get(f"{rest.v3}/topics/{topic}/configs/max.message.bytes", timeout=5).json()["is_default"]

    deleted = requests.delete(f"{rest.v3}/topics/{topic}", timeout=HTTP_TIMEOUT_S)
    assert deleted.status_code == 204, deleted.text
    wait_until(lambda: requests.get(f"{rest.v3}/topics/{topic}", timeout=5).status_code == 404, 15,
               "the deleted topic to be gone")
    assert_error(requests.get(f"{rest.v3}/topics/{topic}", timeout=5), 404, 40401)
    assert_error(requests.delete(f"{rest.v3}/topics/{topic}", timeout=5), 404, 40401)


def test_v3_broker_configs(rest_broker):
    # Goal: v3 broker configs answer in Confluent's shapes with what DescribeConfigs of the
    # broker says; an unknown broker is 404; a change gets the broker's own refusal (Weir's
    # broker configuration is static) as a Confluent error, and the proxy keeps serving.
    broker, rest = rest_broker
    answer = requests.get(f"{rest.v3}/brokers/1/configs", timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "KafkaBrokerConfigList", body
    entries = {entry["name"]: entry for entry in body["data"]}
    assert entries["broker.id"]["value"] == "1", entries["broker.id"]
    assert entries["broker.id"]["kind"] == "KafkaBrokerConfig"
    assert entries["broker.id"]["metadata"]["self"].endswith("/brokers/1/configs/broker.id")
    assert entries["fetch.max.bytes"]["broker_id"] == 1
    one = requests.get(f"{rest.v3}/brokers/1/configs/fetch.max.bytes", timeout=10).json()
    assert one["name"] == "fetch.max.bytes" and one["value"] == entries["fetch.max.bytes"]["value"], one
    assert requests.get(f"{rest.v3}/brokers/1/configs/no.such.config", timeout=10).status_code == 404
    assert requests.get(f"{rest.v3}/brokers/9/configs", timeout=10).status_code == 404
    refused = requests.put(f"{rest.v3}/brokers/1/configs/fetch.max.bytes", json={"value": "1000"}, timeout=10)
    body = assert_error(refused, 400, 400)
    assert "static" in body["message"], body
    assert requests.delete(f"{rest.v3}/brokers/1/configs/fetch.max.bytes", timeout=10).status_code == 400
    batch = requests.post(f"{rest.v3}/brokers/1/configs:alter", timeout=10,
                          json={"data": [{"name": "fetch.max.bytes", "value": "1000"}]})
    assert batch.status_code == 400, batch.text
    assert rest.healthy()


def ck_admin_configs(bootstrap: str, kind, name: str) -> dict:
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.describe_configs([ConfigResource(kind, name)])
    entries = list(future.values())[0].result(timeout=15)
    return {key: entry.value for key, entry in entries.items()}


# --------------------------------------------------------------------------------------
# Produce over HTTP, read by librdkafka (and the other way round)


def murmur2_partitions(bootstrap: str, topic: str, keys: list[bytes]) -> dict[bytes, int]:
    """Where librdkafka's Java-compatible partitioner puts each key."""
    producer = ck_producer(bootstrap, partitioner="murmur2_random")
    deliveries = ck_produce(producer, topic, [{"key": k, "value": b"probe"} for k in keys])
    assert all(d.error is None for d in deliveries)
    return {d.key: d.partition for d in deliveries}


def test_v3_produce_is_read_by_librdkafka_with_keys_partitions_headers(rest_broker):
    broker, rest = rest_broker
    topic, probe = unique("rest-v3"), unique("rest-probe")
    ck_create_topic(broker.bootstrap, topic, 4)
    ck_create_topic(broker.bootstrap, probe, 4)
    keys = [f"key-{i}".encode() for i in range(12)]
    expected_partition = murmur2_partitions(broker.bootstrap, probe, keys)
    assert len(set(expected_partition.values())) > 1, "keys should spread over partitions"

    sent = []
    for i, key in enumerate(keys):
        # The same key bytes written as BINARY or as STRING land on the same partition.
        kind = ["BINARY", "STRING"][i % 2]
        record = {
            "key": {"type": kind, "data": b64(key) if kind == "BINARY" else key.decode()},
            "value": {"type": "JSON", "data": {"n": i, "kind": kind}},
            "headers": [{"name": "trace", "value": b64(f"h{i}".encode())}, {"name": "empty", "value": None}],
        }
        answer = rest.produce(topic, record)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["error_code"] == 200
        assert body["partition_id"] == expected_partition[key], (key, body)
        assert body["key"]["size"] == len(key)
        sent.append((key, body["partition_id"], body["offset"], i))
    pinned = rest.produce(topic, {"partition_id": 3, "value": {"type": "STRING", "data": "pinned"}})
    assert pinned.status_code == 200 and pinned.json()["partition_id"] == 3

    records = ck_read(broker.bootstrap, topic, {p: 0 for p in range(4)})
    by_place = {(r.partition, r.offset): r for r in records}
    for key, partition, offset, i in sent:
        record = by_place[(partition, offset)]
        assert record.key == key
        assert json.loads(record.value) == {"n": i, "kind": ["BINARY", "STRING"][i % 2]}
        assert record.headers == [("trace", f"h{i}".encode()), ("empty", None)]
    assert any(r.partition == 3 and r.value == b"pinned" for r in records)


def test_librdkafka_produce_is_read_by_http_consumer(rest_broker):
    broker, rest = rest_broker
    topic, group = unique("rest-ck"), unique("rest-g")
    ck_create_topic(broker.bootstrap, topic, 3)
    producer = ck_producer(broker.bootstrap, partitioner="murmur2_random")
    messages = [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "headers": [("h", f"x{i}".encode())]}
                for i in range(30)]
    deliveries = ck_produce(producer, topic, messages)
    want = {(d.partition, d.offset): (d.key, d.value) for d in deliveries}

    created = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2},
                            json={"name": "one", "format": "binary", "auto.offset.reset": "earliest"}, timeout=10)
    assert created.status_code == 200, created.text
    instance = created.json()["base_uri"]
    assert instance.endswith(f"/consumers/{group}/instances/one")
    subscribed = requests.post(f"{instance}/subscription", headers={"Content-Type": V2},
                               json={"topics": [topic]}, timeout=10)
    assert subscribed.status_code == 204, subscribed.text
    assert requests.get(f"{instance}/subscription", timeout=5).json() == {"topics": [topic]}

    got = {}

    def read_all():
        answer = requests.get(f"{instance}/records?timeout=1000", headers={"Accept": V2_BINARY}, timeout=HTTP_TIMEOUT_S)
        assert answer.status_code == 200, answer.text
        for r in answer.json():
            assert r["topic"] == topic
            got[(r["partition"], r["offset"])] = (unb64(r["key"]), unb64(r["value"]),
                                                  [(h["key"], unb64(h["value"])) for h in r["headers"]])
        return len(got) >= len(want)

    wait_until(read_all, 45, "the HTTP consumer to read every record")
    assert {place: (key, value) for place, (key, value, _) in got.items()} == want
    for key, _, headers in got.values():
        assert headers == [("h", b"x" + key[1:])]
    assignments = requests.get(f"{instance}/assignments", timeout=5).json()["partitions"]
    assert sorted(a["partition"] for a in assignments) == [0, 1, 2]

    # Commit the last record of partition 0 explicitly; the group stores the next offset,
    # which is where a librdkafka member of the group would resume.
    last0 = max(o for (p, o) in got if p == 0)
    commit = requests.post(f"{instance}/offsets", headers={"Content-Type": V2},
                           json={"offsets": [{"topic": topic, "partition": 0, "offset": last0}]}, timeout=10)
    assert commit.status_code == 204, commit.text
    committed = requests.get(f"{instance}/offsets", headers={"Content-Type": V2},
                             data=json.dumps({"partitions": [{"topic": topic, "partition": 0}]}), timeout=10).json()
    assert committed["offsets"] == [{"topic": topic, "partition": 0, "offset": last0 + 1, "metadata": ""}]

    # Seek back and read partition 0 again from its start.
    seek = requests.post(f"{instance}/positions/beginning", headers={"Content-Type": V2},
                         json={"partitions": [{"topic": topic, "partition": 0}]}, timeout=10)
    assert seek.status_code == 204, seek.text
    again = wait_until(
        lambda: [r for r in requests.get(f"{instance}/records?timeout=1000", headers={"Accept": V2_BINARY},
                                         timeout=HTTP_TIMEOUT_S).json() if r["partition"] == 0],
        20, "records of partition 0 again after the seek")
    assert again[0]["offset"] == 0

    # The v3 view of the group names the instance and its lag.
    group_view = requests.get(f"{rest.v3}/consumer-groups/{group}", timeout=10).json()
    assert (group_view["consumer_group_id"], group_view["state"]) == (group, "STABLE")
    consumers = requests.get(f"{rest.v3}/consumer-groups/{group}/consumers", timeout=10).json()["data"]
    assert len(consumers) == 1
    assigned = requests.get(consumers[0]["assignments"]["related"], timeout=10).json()["data"]
    assert len(assigned) == 3
    lag = requests.get(f"{rest.v3}/consumer-groups/{group}/lag-summary", timeout=10).json()
    assert lag["kind"] == "KafkaConsumerGroupLagSummary" and lag["total_lag"] >= 0
    groups = [g["consumer_group_id"] for g in requests.get(f"{rest.v3}/consumer-groups", timeout=10).json()["data"]]
    assert group in groups

    assert requests.delete(instance, timeout=10).status_code == 204
    assert_error(requests.get(f"{instance}/assignments", timeout=5), 404, 40403)


def v2_instance(rest: Rest, group: str, name: str) -> str:
    created = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2},
                            json={"name": name, "format": "binary", "auto.offset.reset": "earliest"}, timeout=10)
    assert created.status_code == 200, created.text
    return created.json()["base_uri"]


def poll_binary(instance: str) -> list:
    answer = requests.get(f"{instance}/records?timeout=500", headers={"Accept": V2_BINARY}, timeout=HTTP_TIMEOUT_S)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_manual_assignment_and_pattern_subscription(rest_broker):
    # Goal: Kafka's assign() and subscribe(pattern) work over v2 as a Java client expects:
    # a manual instance reads exactly its partitions without joining, starts from the
    # group's committed offsets and commits as a standalone consumer; a pattern matches
    # whole topic names (internal topics excluded) and picks up a matching topic created
    # later; the three ways of consuming are exclusive until an unsubscribe.
    broker, rest = rest_broker
    prefix = unique("pat")
    topic_a, topic_b, other = f"{prefix}-a", f"{prefix}-b", unique("nopat")
    for name, partitions in ((topic_a, 3), (topic_b, 1), (other, 1)):
        ck_create_topic(broker.bootstrap, name, partitions)
    producer = ck_producer(broker.bootstrap)
    for name, partitions in ((topic_a, 3), (topic_b, 1), (other, 1)):
        ck_produce(producer, name, [{"value": f"{name}/{p}/{i}".encode(), "partition": p}
                                    for p in range(partitions) for i in range(5)])

    group = unique("manual-g")
    instance = v2_instance(rest, group, "m")
    assign = requests.post(f"{instance}/assignments", headers={"Content-Type": V2},
                           json={"partitions": [{"topic": topic_a, "partition": 1}]}, timeout=10)
    assert assign.status_code == 204, assign.text
    assert requests.get(f"{instance}/assignments", timeout=5).json() == {
        "partitions": [{"topic": topic_a, "partition": 1}]}
    got = []
    wait_until(lambda: got.extend(poll_binary(instance)) or len(got) >= 5, 20, "the manual instance's records")
    assert {(r["topic"], r["partition"]) for r in got} == {(topic_a, 1)}
    assert sorted(unb64(r["value"]) for r in got) == sorted(f"{topic_a}/1/{i}".encode() for i in range(5))
    # The group has no members, so the standalone commit is accepted; a new manual
    # instance of the group resumes after it.
    commit = requests.post(f"{instance}/offsets", headers={"Content-Type": V2},
                           json={"offsets": [{"topic": topic_a, "partition": 1, "offset": 2}]}, timeout=10)
    assert commit.status_code == 204, commit.text
    assert_error(requests.post(f"{instance}/subscription", headers={"Content-Type": V2},
                               json={"topics": [topic_a]}, timeout=10), 409, 40903)
    assert_error(requests.post(f"{instance}/assignments", headers={"Content-Type": V2},
                               json={"partitions": [{"topic": unique("missing"), "partition": 0}]}, timeout=10),
                 404, 40401)
    assert_error(requests.post(f"{instance}/assignments", headers={"Content-Type": V2},
                               json={"partitions": [{"topic": topic_a, "partition": 9}]}, timeout=10), 404, 40402)
    second = v2_instance(rest, group, "m2")
    assert requests.post(f"{second}/assignments", headers={"Content-Type": V2},
                         json={"partitions": [{"topic": topic_a, "partition": 1}]}, timeout=10).status_code == 204
    resumed = wait_until(lambda: poll_binary(second), 20, "the second manual instance's records")
    assert resumed[0]["offset"] == 3, resumed

    # Unsubscribe ends the manual assignment; a pattern subscription joins the group for
    # every topic it matches whole.
    assert requests.delete(f"{instance}/subscription", timeout=10).status_code == 204
    assert requests.get(f"{instance}/assignments", timeout=5).json() == {"partitions": []}
    pattern_group = unique("pattern-g")
    subscriber = v2_instance(rest, pattern_group, "p")
    assert_error(requests.post(f"{subscriber}/subscription", headers={"Content-Type": V2},
                               json={"topic_pattern": "("}, timeout=10), 422, 42204)
    subscribed = requests.post(f"{subscriber}/subscription", headers={"Content-Type": V2},
                               json={"topic_pattern": f"{prefix}-.*"}, timeout=10)
    assert subscribed.status_code == 204, subscribed.text
    assert requests.get(f"{subscriber}/subscription", timeout=5).json() == {"topics": [topic_a, topic_b]}
    assert_error(requests.post(f"{subscriber}/assignments", headers={"Content-Type": V2},
                               json={"partitions": [{"topic": topic_a, "partition": 0}]}, timeout=10), 409, 40903)
    seen = set()
    wait_until(lambda: seen.update((r["topic"], r["partition"]) for r in poll_binary(subscriber)) or len(seen) >= 4,
               45, "records of every matching partition")
    assert seen == {(topic_a, 0), (topic_a, 1), (topic_a, 2), (topic_b, 0)}
    # A matching topic created later is consumed after the next listing.
    topic_c = f"{prefix}-c"
    ck_create_topic(broker.bootstrap, topic_c, 1)
    ck_produce(producer, topic_c, [{"value": b"late"}])
    late = []
    wait_until(lambda: late.extend(r for r in poll_binary(subscriber) if r["topic"] == topic_c) or late, 45,
               "the topic created after the pattern subscription")
    assert unb64(late[0]["value"]) == b"late"
    assert requests.get(f"{subscriber}/subscription", timeout=5).json() == {"topics": [topic_a, topic_b, topic_c]}
    assert rest.healthy()


def test_v3_streamed_produce_answers_each_record_in_order(rest_broker):
    broker, rest = rest_broker
    topic = unique("rest-stream")
    ck_create_topic(broker.bootstrap, topic, 2)
    count = 500

    def body():
        # Several records per chunk and records split across chunks: a real stream.
        text = "".join(json.dumps({"key": {"type": "STRING", "data": f"k{i % 7}"},
                                   "value": {"type": "JSON", "data": i}}) for i in range(count))
        for start in range(0, len(text), 777):
            yield text[start:start + 777].encode()

    answer = requests.post(f"{rest.v3}/topics/{topic}/records", data=body(),
                           headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 200, answer.text
    results = [json.loads(line) for line in answer.text.splitlines() if line.strip()]
    assert len(results) == count
    assert all(r["error_code"] == 200 for r in results), [r for r in results if r["error_code"] != 200][:3]
    # Per partition, offsets rise in request order with no gaps (one answer per record).
    for partition in (0, 1):
        offsets = [r["offset"] for r in results if r["partition_id"] == partition]
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    records = ck_read(broker.bootstrap, topic, {0: 0, 1: 0})
    assert sorted(json.loads(r.value) for r in records) == list(range(count))
    # Same key -> same partition, as the answers said.
    for r in records:
        assert results[json.loads(r.value)]["partition_id"] == r.partition

    # A bad record inside a stream gets its own error; the others are written.
    mixed = (json.dumps({"value": {"type": "BINARY", "data": "aGk="}})
             + json.dumps({"value": {"type": "BINARY", "data": "%%%"}})
             + json.dumps({"value": {"type": "STRING", "data": "ok"}}))
    answer = requests.post(f"{rest.v3}/topics/{topic}/records", data=mixed,
                           headers={"Content-Type": "application/json"}, timeout=30)
    codes = [json.loads(line)["error_code"] for line in answer.text.splitlines() if line.strip()]
    assert codes == [200, 42205, 200], answer.text


def test_v2_produce_json_and_binary(rest_broker):
    broker, rest = rest_broker
    topic = unique("rest-v2")
    ck_create_topic(broker.bootstrap, topic, 3)
    answer = requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_JSON},
                           json={"records": [{"key": "a", "value": {"x": 1}}, {"value": [1, 2], "partition": 2}]},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    offsets = answer.json()["offsets"]
    assert offsets[1]["partition"] == 2 and all(o["error_code"] is None for o in offsets)
    binary = requests.post(f"{rest.base}/topics/{topic}/partitions/1", headers={"Content-Type": V2_BINARY},
                           json={"records": [{"key": b64(b"bk"), "value": b64(b"\x00\x01binary")}]}, timeout=30)
    assert binary.status_code == 200, binary.text
    assert binary.json()["offsets"][0]["partition"] == 1
    records = {(r.partition, r.offset): r for r in ck_read(broker.bootstrap, topic, {0: 0, 1: 0, 2: 0})}
    first = records[(offsets[0]["partition"], offsets[0]["offset"])]
    assert (first.key, json.loads(first.value)) == (b'"a"', {"x": 1})
    assert records[(1, binary.json()["offsets"][0]["offset"])].value == b"\x00\x01binary"
    v2_topic = requests.get(f"{rest.base}/topics/{topic}", timeout=5).json()
    assert [p["partition"] for p in v2_topic["partitions"]] == [0, 1, 2]
    assert topic in requests.get(f"{rest.base}/topics", timeout=5).json()


def test_http_and_librdkafka_consumers_share_a_group(rest_broker):
    broker, rest = rest_broker
    topic, group = unique("rest-share"), unique("rest-shared")
    ck_create_topic(broker.bootstrap, topic, 4)
    created = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2},
                            json={"name": "http", "auto.offset.reset": "earliest"}, timeout=10)
    instance = created.json()["base_uri"]
    requests.post(f"{instance}/subscription", headers={"Content-Type": V2}, json={"topics": [topic]}, timeout=10)
    wait_until(lambda: len(requests.get(f"{instance}/assignments", timeout=5).json()["partitions"]) == 4, 30,
               "the HTTP consumer to own all 4 partitions alone")

    ck = ck_consumer(broker.bootstrap, **{"group.id": group, "group.protocol": "consumer",
                                          "enable.partition.eof": False})
    ck.subscribe([topic])
    try:
        def split():
            ck.poll(0.2)
            requests.get(f"{instance}/records?timeout=200", headers={"Accept": V2_BINARY}, timeout=10)
            mine = {a["partition"] for a in requests.get(f"{instance}/assignments", timeout=5).json()["partitions"]}
            theirs = {tp.partition for tp in ck.assignment()}
            return (mine, theirs) if mine and theirs and not mine & theirs and mine | theirs == {0, 1, 2, 3} else None

        mine, theirs = wait_until(split, 60, "the HTTP and librdkafka consumers to split 4 partitions")
        assert len(mine) == 2 and len(theirs) == 2, (mine, theirs)
        # Deleting the HTTP instance leaves the group: librdkafka takes every partition.
        assert requests.delete(instance, timeout=10).status_code == 204

        def all_theirs():
            ck.poll(0.2)
            return {tp.partition for tp in ck.assignment()} == {0, 1, 2, 3}

        wait_until(all_theirs, 60, "librdkafka to take the partitions the HTTP consumer released")
    finally:
        ck.close()


# --------------------------------------------------------------------------------------
# Errors: Confluent's status and error codes, and the broker keeps serving


def test_error_paths_answer_confluent_codes(rest_broker):
    broker, rest = rest_broker
    topic = unique("rest-err")
    ck_create_topic(broker.bootstrap, topic, 1)
    json_type = {"Content-Type": "application/json"}
    checks = [
        # unknown topic, v3 and v2
        (lambda: rest.produce("no-such-topic", {"value": {"data": 1}}), 404, 40401),
        (lambda: requests.post(f"{rest.base}/topics/no-such-topic", headers={"Content-Type": V2_JSON},
                               json={"records": [{"value": 1}]}, timeout=10), 404, 40401),
        (lambda: requests.get(f"{rest.v3}/topics/no-such-topic", timeout=10), 404, 40401),
        # unknown partition
        (lambda: rest.produce(topic, {"partition_id": 5, "value": {"data": 1}}), 404, 40402),
        # bad JSON
        (lambda: requests.post(f"{rest.v3}/topics/{topic}/records", data=b'{"value": ', headers=json_type,
                               timeout=10), 400, 400),
        (lambda: requests.post(f"{rest.base}/topics/{topic}", data=b"{nope", headers={"Content-Type": V2_JSON},
                               timeout=10), 400, 400),
        (lambda: requests.post(f"{rest.v3}/topics", data=b"[1,", headers=json_type, timeout=10), 400, 400),
        # bad base64
        (lambda: rest.produce(topic, {"value": {"type": "BINARY", "data": "not*base64"}}), 422, 42205),
        (lambda: requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_BINARY},
                               json={"records": [{"value": "@@@"}]}, timeout=10), 422, 42205),
        # wrong content type
        (lambda: requests.post(f"{rest.v3}/topics/{topic}/records", data=b"{}",
                               headers={"Content-Type": "text/plain"}, timeout=10), 415, 415),
        (lambda: requests.post(f"{rest.base}/topics/{topic}", data=b"{}",
                               headers={"Content-Type": "text/plain"}, timeout=10), 415, 415),
        # schema formats need the schema registry (off on this broker)
        (lambda: rest.produce(topic, {"value": {"type": "AVRO", "data": 1}}), 422, 42207),
        (lambda: rest.produce(topic, {"value": {"schema_id": 1, "data": 1}}), 422, 42207),
        (lambda: requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_AVRO},
                               json={"value_schema_id": 1, "records": [{"value": 1}]}, timeout=10), 422, 42207),
        (lambda: requests.post(f"{rest.base}/consumers/g", headers={"Content-Type": V2},
                               json={"format": "avro"}, timeout=10), 422, 42207),
        # unknown consumer instance
        (lambda: requests.get(f"{rest.base}/consumers/g/instances/none/assignments", timeout=10), 404, 40403),
        # unknown route
        (lambda: requests.get(f"{rest.base}/v4/nothing", timeout=10), 404, 404),
    ]
    for send, status, code in checks:
        assert_error(send(), status, code)
        assert rest.healthy()
    # An oversized body (over the 16 MiB limit) is refused with 413 and the broker serves on.
    big = b'{"records":[{"value":"' + b"A" * (17 * 1024 * 1024) + b'"}]}'
    answer = requests.post(f"{rest.base}/topics/{topic}", data=big, headers={"Content-Type": V2_BINARY}, timeout=30)
    assert_error(answer, 413, 413)
    big_v3 = b'{"value":{"data":"' + b"A" * (17 * 1024 * 1024) + b'"}}'
    answer = requests.post(f"{rest.v3}/topics/{topic}/records", data=big_v3, headers=json_type, timeout=30)
    assert_error(answer, 413, 413)
    assert rest.healthy()
    # The Kafka listener still serves too.
    assert ck_produce(ck_producer(broker.bootstrap), topic, [{"value": b"still here"}])[0].error is None


def no_members(rest: Rest, group: str) -> bool:
    """The group has no member: listed empty, or gone (404 40405: a KIP-848 group with
    no members and no committed offsets is not kept)."""
    answer = requests.get(f"{rest.v3}/consumer-groups/{group}/consumers", timeout=5)
    if answer.status_code == 404:
        return answer.json()["error_code"] == 40405
    return answer.json()["data"] == []


def test_idle_consumer_instance_expires_and_releases_its_partitions(rest_broker):
    broker, rest = rest_broker
    topic, group = unique("rest-idle"), unique("rest-idle-g")
    ck_create_topic(broker.bootstrap, topic, 2)
    created = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2},
                            json={"name": "idle"}, timeout=10)
    instance = created.json()["base_uri"]
    requests.post(f"{instance}/subscription", headers={"Content-Type": V2}, json={"topics": [topic]}, timeout=10)
    wait_until(lambda: len(requests.get(f"{instance}/assignments", timeout=5).json()["partitions"]) == 2, 30,
               "the instance to own both partitions")
    started = time.monotonic()
    # Left idle past weir.rest.consumer.instance.timeout.ms (watched through the group,
    # since touching the instance would keep it alive), it leaves its group...
    wait_until(lambda: no_members(rest, group), 30, "the expired instance to leave the group")
    assert time.monotonic() - started >= INSTANCE_TIMEOUT_MS / 1000 - 0.5
    # ...and is gone.
    assert_error(requests.get(f"{instance}/assignments", timeout=5), 404, 40403)
    assert_error(requests.get(f"{instance}/records", headers={"Accept": V2_BINARY}, timeout=5), 404, 40403)
    # A new instance of the same name can be created.
    again = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2}, json={"name": "idle"},
                          timeout=10)
    assert again.status_code == 200, again.text
    duplicate = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2}, json={"name": "idle"},
                              timeout=10)
    assert_error(duplicate, 409, 40902)


# --------------------------------------------------------------------------------------
# curl


def curl(*args: str) -> tuple[int, str]:
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                         timeout=60, check=True)
    body, _, code = out.stdout.rpartition("\n")
    return int(code), body


def test_curl_produce_and_list(rest_broker):
    broker, rest = rest_broker
    topic = unique("rest-curl")
    code, body = curl("-X", "POST", "-H", "Content-Type: application/json", f"{rest.v3}/topics",
                      "-d", json.dumps({"topic_name": topic, "partitions_count": 1}))
    assert code == 201, body
    code, body = curl("-X", "POST", "-H", "Content-Type: application/json", f"{rest.v3}/topics/{topic}/records",
                      "-d", '{"key":{"type":"STRING","data":"c"},"value":{"type":"STRING","data":"from curl"}}')
    assert code == 200, body
    assert json.loads(body)["offset"] == 0
    code, body = curl(f"{rest.v3}/topics")
    assert code == 200 and topic in body
    records = ck_read(broker.bootstrap, topic, {0: 0})
    assert [(r.key, r.value) for r in records] == [(b"c", b"from curl")]


# --------------------------------------------------------------------------------------
# A 3-node cluster: the proxy of a broker that leads none of the partitions


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_cluster_produce_and_consume_through_a_broker_leading_nothing(tmp_path):
    from test_cluster import CLUSTER_CONFIG, Cluster, create_topic, partition_state

    cluster = Cluster(tmp_path / "cluster", 3, config=CLUSTER_CONFIG)
    ports = {}
    for node_id, node in cluster.nodes.items():
        ports[node_id] = free_port()
        node.config_path.write_text(rest_config(ports[node_id], CLUSTER_CONFIG))
    try:
        cluster.start()
        cluster.wait_formed()
        topic = unique("rest-cluster")
        # One partition, one replica: exactly one node holds it; the others lead nothing.
        create_topic(cluster, topic, 1, rf=1, min_isr=1)
        leader = wait_until(lambda: partition_state(cluster.bootstrap(), topic, 0).leader, 30, "a leader")
        other = next(n for n in cluster.nodes if n != leader)
        rest = Rest(ports[other])
        replicas = requests.get(f"{rest.v3}/topics/{topic}/partitions/0/replicas", timeout=10).json()["data"]
        assert [(r["broker_id"], r["is_leader"]) for r in replicas] == [(leader, True)]
        assert sorted(b["broker_id"] for b in requests.get(f"{rest.v3}/brokers", timeout=10).json()["data"]) == [1, 2, 3]

        for i in range(5):
            answer = rest.produce(topic, {"key": {"type": "STRING", "data": f"k{i}"},
                                          "value": {"type": "STRING", "data": f"v{i}"},
                                          "headers": [{"name": "n", "value": b64(str(i).encode())}]})
            assert answer.status_code == 200, answer.text
            assert (answer.json()["partition_id"], answer.json()["offset"]) == (0, i)
        stream = "".join(json.dumps({"value": {"type": "STRING", "data": f"s{i}"}}) for i in range(20))
        answer = requests.post(f"{rest.v3}/topics/{topic}/records", data=stream,
                               headers={"Content-Type": "application/json"}, timeout=60)
        offsets = [json.loads(line)["offset"] for line in answer.text.splitlines() if line.strip()]
        assert offsets == list(range(5, 25)), answer.text
        records = ck_read(cluster.bootstrap(), topic, {0: 0})
        assert [(r.key, r.value) for r in records[:5]] == [(f"k{i}".encode(), f"v{i}".encode()) for i in range(5)]
        assert [r.headers for r in records[:2]] == [[("n", b"0")], [("n", b"1")]]
        assert [r.value for r in records[5:]] == [f"s{i}".encode() for i in range(20)]

        # A consumer instance on the same broker reads them (fetches go to the leader).
        group = unique("rest-cluster-g")
        created = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2},
                                json={"format": "binary", "auto.offset.reset": "earliest"}, timeout=10)
        instance = created.json()["base_uri"]
        requests.post(f"{instance}/subscription", headers={"Content-Type": V2}, json={"topics": [topic]}, timeout=10)
        got = []

        def read():
            answer = requests.get(f"{instance}/records?timeout=1000", headers={"Accept": V2_BINARY}, timeout=30)
            got.extend(unb64(r["value"]) for r in answer.json())
            return len(got) >= 25

        wait_until(read, 60, "the HTTP consumer on a non-leader to read 25 records")
        assert got[:5] == [f"v{i}".encode() for i in range(5)]
    finally:
        cluster.close()


# --------------------------------------------------------------------------------------
# Basic authentication, ACLs per principal, and the v3 ACL endpoints

JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'user_admin=\\"admin-secret\\" user_alice=\\"alice-secret\\" user_bob=\\"bob-secret\\";'
)


def test_basic_auth_acls_per_principal_and_acl_endpoints(broker_factory):
    rest_port, sasl_port = free_port(), free_port()
    config = rest_config(rest_port) + f"""
listeners = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{sasl_port}"
"listener.name.sasl_plaintext.plain.sasl.jaas.config" = "{JAAS}"
"authorizer.class.name" = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
"super.users" = "User:admin"
"weir.http.authentication.method" = "BASIC"
"""
    broker_factory.new(config=config, name="rest-acl")
    base = f"http://127.0.0.1:{rest_port}"
    admin, alice, bob = ("admin", "admin-secret"), ("alice", "alice-secret"), ("bob", "bob-secret")
    assert requests.get(f"{base}/v3/clusters", timeout=10).status_code == 401
    assert requests.get(f"{base}/v3/clusters", auth=("alice", "wrong"), timeout=10).status_code == 401
    cluster_id = wait_until(lambda: requests.get(f"{base}/v3/clusters", auth=admin, timeout=5).json()["data"][0]["cluster_id"],
                            15, "the cluster id")
    v3 = f"{base}/v3/clusters/{cluster_id}"
    topic = unique("rest-acl")
    created = requests.post(f"{v3}/topics", auth=admin, json={"topic_name": topic, "partitions_count": 1}, timeout=30)
    assert created.status_code == 201, created.text

    acl = {"resource_type": "TOPIC", "resource_name": topic, "pattern_type": "LITERAL",
           "principal": "User:alice", "host": "*", "operation": "WRITE", "permission": "ALLOW"}
    # bob may not create ACLs; admin (a super user) may.
    assert_error(requests.post(f"{v3}/acls", auth=bob, json=acl, timeout=10), 403, 40301)
    assert requests.post(f"{v3}/acls", auth=admin, json=acl, timeout=10).status_code == 201
    for op in ("READ", "DESCRIBE"):
        assert requests.post(f"{v3}/acls", auth=admin, json={**acl, "operation": op}, timeout=10).status_code == 201
    group_acl = {**acl, "resource_type": "GROUP", "resource_name": "rest-acl-", "pattern_type": "PREFIXED",
                 "operation": "READ"}
    assert requests.post(f"{v3}/acls", auth=admin, json=group_acl, timeout=10).status_code == 201
    listed = requests.get(f"{v3}/acls", auth=admin, params={"principal": "User:alice", "resource_type": "TOPIC"},
                          timeout=10).json()["data"]
    assert sorted(a["operation"] for a in listed) == ["DESCRIBE", "READ", "WRITE"]
    assert all(a["kind"] == "KafkaAcl" and a["resource_name"] == topic for a in listed)
    assert_error(requests.get(f"{v3}/acls", auth=admin, params={"operation": "NOPE"}, timeout=10), 400, 400)

    record = {"value": {"type": "STRING", "data": "hello"}}
    written = requests.post(f"{v3}/topics/{topic}/records", auth=alice, json=record, timeout=30)
    assert written.status_code == 200, written.text
    denied = requests.post(f"{v3}/topics/{topic}/records", auth=bob, json=record, timeout=30)
    assert denied.status_code == 403 and denied.json()["error_code"] == 40301, denied.text

    # alice's consumer instance is hers: bob is told it does not exist.
    group = unique("rest-acl-g")
    instance = requests.post(f"{base}/consumers/{group}", auth=alice, headers={"Content-Type": V2},
                             json={"name": "mine", "auto.offset.reset": "earliest"}, timeout=10).json()["base_uri"]
    assert requests.post(f"{instance}/subscription", auth=alice, headers={"Content-Type": V2},
                         json={"topics": [topic]}, timeout=10).status_code == 204
    assert_error(requests.get(f"{instance}/assignments", auth=bob, timeout=10), 404, 40403)
    values = wait_until(lambda: [unb64(r["value"]) for r in requests.get(
        f"{instance}/records?timeout=1000", auth=alice, headers={"Accept": V2_BINARY}, timeout=30).json()],
        30, "alice's instance to read her record")
    assert values == [b"hello"]

    # Deleting alice's WRITE ACL over HTTP takes her write away.
    deleted = requests.delete(f"{v3}/acls", auth=admin, params={"principal": "User:alice", "operation": "WRITE"},
                              timeout=10).json()["data"]
    assert [(a["resource_name"], a["operation"]) for a in deleted] == [(topic, "WRITE")]
    wait_until(lambda: requests.post(f"{v3}/topics/{topic}/records", auth=alice, json=record,
                                     timeout=30).status_code == 403, 15, "alice's writes to be denied")


def test_v3_describes_a_classic_librdkafka_group(rest_broker):
    broker, rest = rest_broker
    topic, group = unique("rest-classic"), unique("rest-classic-g")
    ck_create_topic(broker.bootstrap, topic, 3)
    ck = ck_consumer(broker.bootstrap, **{"group.id": group, "enable.partition.eof": False})
    ck.subscribe([topic])
    try:
        wait_until(lambda: ck.poll(0.2) is None and len(ck.assignment()) == 3, 30, "the classic member's assignment")
        view = requests.get(f"{rest.v3}/consumer-groups/{group}", timeout=10).json()
        assert (view["state"], view["is_simple"]) == ("STABLE", False), view
        # The coordinator link names the one broker (its id, not a placeholder).
        broker_id = requests.get(f"{rest.v3}/brokers", timeout=10).json()["data"][0]["broker_id"]
        assert view["coordinator"]["related"].endswith(f"/brokers/{broker_id}"), view
        consumers = requests.get(f"{rest.v3}/consumer-groups/{group}/consumers", timeout=10).json()["data"]
        assert len(consumers) == 1
        assigned = requests.get(consumers[0]["assignments"]["related"], timeout=10).json()["data"]
        assert sorted(a["partition_id"] for a in assigned) == [0, 1, 2]
        assert consumers[0]["client_id"] == "rdkafka"
    finally:
        ck.close()


# --------------------------------------------------------------------------------------
# Schema formats (AVRO, PROTOBUF, JSONSCHEMA) through the broker's schema registry

USER_AVRO = json.dumps({
    "type": "record", "name": "User", "namespace": "weir.rest",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "age", "type": "int"},
        {"name": "email", "type": ["null", "string"], "default": None},
    ],
})
ORDER_JSONSCHEMA = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Order", "type": "object",
    "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
    "required": ["id"],
})
PING_PROTO = """syntax = "proto3";
package weir.rest;
message Ping {
  int64 id = 1;
  string note = 2;
}
"""


@pytest.fixture
def schema_broker(broker_factory):
    """A broker with the REST proxy and the schema registry on free ports: (broker, rest, registry URL)."""
    rest_port, registry_port = free_port(), free_port()
    config = rest_config(rest_port, registry=f"127.0.0.1:{registry_port}")
    broker = broker_factory.new(config=config, name="rest-schemas")
    return broker, Rest(rest_port), f"http://127.0.0.1:{registry_port}"


def framed_id(raw: bytes) -> int:
    import struct

    magic, schema_id = struct.unpack(">bI", raw[:5])
    assert magic == 0, raw
    return schema_id


def rest_consume(rest: Rest, fmt: str, accept: str, topic: str, count: int) -> list:
    """A v2 consumer instance of `fmt` reading `count` records of `topic` from the start."""
    group = unique("rest-fmt")
    created = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2},
                            json={"format": fmt, "auto.offset.reset": "earliest"}, timeout=10)
    assert created.status_code == 200, created.text
    instance = created.json()["base_uri"]
    subscribed = requests.post(f"{instance}/subscription", headers={"Content-Type": V2},
                               json={"topics": [topic]}, timeout=10)
    assert subscribed.status_code == 204, subscribed.text
    got = []

    def read():
        answer = requests.get(f"{instance}/records?timeout=1000", headers={"Accept": accept}, timeout=HTTP_TIMEOUT_S)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith(accept)
        got.extend(answer.json())
        return len(got) >= count

    wait_until(read, 45, f"the {fmt} consumer to read {count} records")
    assert requests.delete(instance, timeout=10).status_code == 204
    return sorted(got, key=lambda r: r["offset"])


def test_avro_over_rest_v3_and_v2_read_by_avro_deserializer_and_back(schema_broker):
    # Goal: AVRO keys/values produced over REST v3 (inline schema, schema_id, latest of the
    # subject) and v2 (value_schema, value_schema_id) are framed in Confluent's wire format
    # under the registry's ids, so confluent-kafka's AvroDeserializer reads them; and records
    # written by AvroSerializer are read by a v2 avro consumer instance. Method: real broker,
    # Weir's registry for both sides, field-by-field comparison.
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    broker, rest, registry_url = schema_broker
    topic = unique("rest-avro")
    ck_create_topic(broker.bootstrap, topic, 1)
    first = rest.produce(topic, {"value": {"type": "AVRO", "schema": USER_AVRO,
                                           "data": {"name": "ann", "age": 30, "email": {"string": "a@x"}}}})
    assert first.status_code == 200, first.text
    assert first.json()["value"]["type"] == "AVRO"
    client = SchemaRegistryClient({"url": registry_url})
    latest = client.get_latest_version(f"{topic}-value")
    schema_id = latest.schema_id
    by_id = rest.produce(topic, {"value": {"type": "AVRO", "schema_id": schema_id, "data": {"name": "bob", "age": 31}}})
    assert by_id.status_code == 200, by_id.text
    # No schema field: the subject's (TopicNameStrategy) latest version; the type is enough.
    by_latest = rest.produce(topic, {"key": {"type": "STRING", "data": "k"},
                                     "value": {"type": "AVRO", "data": {"name": "cy", "age": 32, "email": None}}})
    assert by_latest.status_code == 200, by_latest.text
    v2 = requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_AVRO},
                       json={"value_schema": USER_AVRO, "records": [{"value": {"name": "di", "age": 33}}]}, timeout=10)
    assert v2.status_code == 200, v2.text
    assert (v2.json()["key_schema_id"], v2.json()["value_schema_id"]) == (None, schema_id)
    v2_by_id = requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_AVRO},
                             json={"value_schema_id": schema_id, "records": [{"value": {"name": "ed", "age": 34}}]},
                             timeout=10)
    assert v2_by_id.status_code == 200, v2_by_id.text
    assert v2_by_id.json()["value_schema_id"] == schema_id

    deserializer = AvroDeserializer(client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    records = ck_read(broker.bootstrap, topic, {0: 0})
    assert [framed_id(r.value) for r in records] == [schema_id] * 5
    assert [deserializer(r.value, ctx) for r in records] == [
        {"name": "ann", "age": 30, "email": "a@x"},
        {"name": "bob", "age": 31, "email": None},
        {"name": "cy", "age": 32, "email": None},
        {"name": "di", "age": 33, "email": None},
        {"name": "ed", "age": 34, "email": None},
    ]
    assert records[2].key == b"k"

    # Keys have their own subject (<topic>-key); RECORD_NAME names the subject after the
    # record; a streamed request (several record objects in one body) converts each.
    keyed = rest.produce(topic, {"key": {"type": "AVRO", "schema": '"string"', "data": "key-1"},
                                 "value": {"type": "AVRO", "schema": USER_AVRO, "subject_name_strategy": "RECORD_NAME",
                                           "data": {"name": "fy", "age": 35}}})
    assert keyed.status_code == 200, keyed.text
    key_id = client.get_latest_version(f"{topic}-key").schema_id
    assert client.get_latest_version("weir.rest.User").schema_id == schema_id
    body = "".join(json.dumps({"value": {"type": "AVRO", "schema_id": schema_id, "data": {"name": n, "age": 1}}})
                   for n in ("gus", "hal"))
    streamed = requests.post(f"{rest.v3}/topics/{topic}/records", data=body,
                             headers={"Content-Type": "application/json"}, timeout=HTTP_TIMEOUT_S)
    assert streamed.status_code == 200, streamed.text
    assert [json.loads(line)["error_code"] for line in streamed.text.splitlines()] == [200, 200]
    more = ck_read(broker.bootstrap, topic, {0: 5})
    assert framed_id(more[0].key) == key_id
    assert AvroDeserializer(client)(more[0].key, SerializationContext(topic, MessageField.KEY)) == "key-1"
    assert [deserializer(r.value, ctx)["name"] for r in more] == ["fy", "gus", "hal"]
    # TOPIC_RECORD_NAME, and v2 keys with key_schema (answered with the <topic>-key id).
    named = rest.produce(topic, {"value": {"type": "AVRO", "schema": USER_AVRO, "subject_name_strategy": "TOPIC_RECORD_NAME",
                                           "data": {"name": "ivy", "age": 36}}})
    assert named.status_code == 200, named.text
    assert client.get_latest_version(f"{topic}-weir.rest.User").schema_id == schema_id
    keyed_v2 = requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_AVRO}, timeout=10,
                             json={"key_schema": '"string"', "value_schema_id": schema_id,
                                   "records": [{"key": "key-2", "value": {"name": "jo", "age": 37}}]})
    assert keyed_v2.status_code == 200, keyed_v2.text
    assert (keyed_v2.json()["key_schema_id"], keyed_v2.json()["value_schema_id"]) == (key_id, schema_id)
    last = ck_read(broker.bootstrap, topic, {0: 9})
    assert AvroDeserializer(client)(last[0].key, SerializationContext(topic, MessageField.KEY)) == "key-2"

    # The other way: AvroSerializer's records, read by a v2 avro consumer instance (Avro's
    # JSON encoding: the union's branch named).
    other = unique("rest-avro-ck")
    ck_create_topic(broker.bootstrap, other, 1)
    serializer = AvroSerializer(client, USER_AVRO)
    producer = ck_producer(broker.bootstrap)
    values = [{"name": f"u{i}", "age": i, "email": None if i % 2 else f"u{i}@x"} for i in range(4)]
    ck_produce(producer, other, [{"value": serializer(v, SerializationContext(other, MessageField.VALUE))}
                                 for v in values])
    got = rest_consume(rest, "avro", V2_AVRO, other, len(values))
    assert [r["value"] for r in got] == [
        {"name": f"u{i}", "age": i, "email": None if i % 2 else {"string": f"u{i}@x"}} for i in range(4)]
    assert all(r["key"] is None for r in got)


def test_jsonschema_over_rest_read_by_json_deserializer_and_back(schema_broker):
    # Goal: JSONSCHEMA over REST v3 and v2 is validated, framed under the registry's id and
    # read by JSONDeserializer; JSONSerializer's records are read by a jsonschema consumer
    # instance. Method: as for Avro.
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    broker, rest, registry_url = schema_broker
    topic = unique("rest-js")
    ck_create_topic(broker.bootstrap, topic, 1)
    v3 = rest.produce(topic, {"value": {"type": "JSONSCHEMA", "schema": ORDER_JSONSCHEMA,
                                        "data": {"id": 1, "item": "pen"}}})
    assert v3.status_code == 200, v3.text
    v2 = requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_JSONSCHEMA},
                       json={"value_schema": ORDER_JSONSCHEMA, "records": [{"value": {"id": 2}}]}, timeout=10)
    assert v2.status_code == 200, v2.text
    client = SchemaRegistryClient({"url": registry_url})
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "JSON"
    assert v2.json()["value_schema_id"] == latest.schema_id
    records = ck_read(broker.bootstrap, topic, {0: 0})
    assert [framed_id(r.value) for r in records] == [latest.schema_id] * 2
    deserializer = JSONDeserializer(ORDER_JSONSCHEMA)
    ctx = SerializationContext(topic, MessageField.VALUE)
    assert [deserializer(r.value, ctx) for r in records] == [{"id": 1, "item": "pen"}, {"id": 2}]

    other = unique("rest-js-ck")
    ck_create_topic(broker.bootstrap, other, 1)
    serializer = JSONSerializer(ORDER_JSONSCHEMA, client)
    values = [{"id": i, "item": f"thing-{i}"} for i in range(3)]
    ck_produce(ck_producer(broker.bootstrap), other,
               [{"value": serializer(v, SerializationContext(other, MessageField.VALUE))} for v in values])
    got = rest_consume(rest, "jsonschema", V2_JSONSCHEMA, other, len(values))
    assert [r["value"] for r in got] == values


def test_protobuf_over_rest_wire_format_and_consume(schema_broker, tmp_path):
    # Goal: PROTOBUF over REST v3 (inline .proto text) and v2 is written in Confluent's
    # wire format (magic, id, message index [0] as one 0 byte, the message), which
    # ProtobufDeserializer decodes; a protobuf consumer instance reads it back as JSON.
    # Method: the class generated with grpcio-tools' protoc, as test_schema_registry does.
    from grpc_tools import protoc
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    import sys

    (tmp_path / "ping.proto").write_text(PING_PROTO)
    assert protoc.main(["protoc", f"-I{tmp_path}", f"--python_out={tmp_path}", "ping.proto"]) == 0
    sys.path.insert(0, str(tmp_path))
    try:
        import ping_pb2
    finally:
        sys.path.remove(str(tmp_path))

    broker, rest, registry_url = schema_broker
    topic = unique("rest-pb")
    ck_create_topic(broker.bootstrap, topic, 1)
    v3 = rest.produce(topic, {"value": {"type": "PROTOBUF", "schema": PING_PROTO, "data": {"id": "7", "note": "hi"}}})
    assert v3.status_code == 200, v3.text
    v2 = requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_PROTOBUF},
                       json={"value_schema": PING_PROTO, "records": [{"value": {"id": 8}}]}, timeout=10)
    assert v2.status_code == 200, v2.text
    client = SchemaRegistryClient({"url": registry_url})
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "PROTOBUF"
    assert v2.json()["value_schema_id"] == latest.schema_id
    records = ck_read(broker.bootstrap, topic, {0: 0})
    for record in records:
        assert framed_id(record.value) == latest.schema_id
        assert record.value[5] == 0, record.value  # message indexes [0]: one zero byte
    first = ping_pb2.Ping()
    first.ParseFromString(records[0].value[6:])
    assert (first.id, first.note) == (7, "hi")
    deserializer = ProtobufDeserializer(ping_pb2.Ping, {"use.deprecated.format": False})
    decoded = deserializer(records[1].value, SerializationContext(topic, MessageField.VALUE))
    assert (decoded.id, decoded.note) == (8, "")
    got = rest_consume(rest, "protobuf", V2_PROTOBUF, topic, 2)
    assert [r["value"] for r in got] == [{"id": "7", "note": "hi"}, {"id": "8", "note": ""}]

    # The other way: ProtobufSerializer registers its file as a base64 descriptor; a
    # protobuf consumer instance decodes its records by that id.
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer

    other = unique("rest-pb-ck")
    ck_create_topic(broker.bootstrap, other, 1)
    serializer = ProtobufSerializer(ping_pb2.Ping, client, {"use.deprecated.format": False})
    values = [ping_pb2.Ping(id=i, note=f"n{i}") for i in range(3)]
    ck_produce(ck_producer(broker.bootstrap), other,
               [{"value": serializer(v, SerializationContext(other, MessageField.VALUE))} for v in values])
    got = rest_consume(rest, "protobuf", V2_PROTOBUF, other, len(values))
    assert [r["value"] for r in got] == [{"id": str(i), "note": f"n{i}"} for i in range(3)]


def test_schema_format_error_paths(schema_broker):
    # Goal: every schema-format failure gets Confluent's status and code and the broker
    # keeps serving: data that does not match its schema (422 42203), a v2 request without
    # its value schema (422 42202), an unknown schema id or subject and an invalid schema
    # (400, the registry's failure named), a schema of another type (400), a format that
    # takes no schema given one (400), and a consumer whose Accept names another format
    # (406 40601). Method: one request per case, then a good produce.
    broker, rest, _ = schema_broker
    topic = unique("rest-fmt-err")
    ck_create_topic(broker.bootstrap, topic, 1)
    ok = rest.produce(topic, {"value": {"type": "AVRO", "schema": USER_AVRO, "data": {"name": "a", "age": 1}}})
    assert ok.status_code == 200, ok.text
    avro = lambda data, **extra: rest.produce(topic, {"value": {"type": "AVRO", "data": data, **extra}})  # noqa: E731
    checks = [
        (lambda: avro({"name": "a", "age": "old"}), 422, 42203),
        (lambda: avro({"name": "a", "age": 1, "extra": 2}), 422, 42203),
        (lambda: avro({"age": 1}), 422, 42203),
        (lambda: rest.produce(topic, {"value": {"type": "JSONSCHEMA", "schema": ORDER_JSONSCHEMA,
                                                "subject": f"{topic}-orders", "data": {"id": "x"}}}), 422, 42203),
        (lambda: requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_AVRO},
                               json={"records": [{"value": {"name": "a", "age": 1}}]}, timeout=10), 422, 42202),
        (lambda: requests.post(f"{rest.base}/topics/{topic}", headers={"Content-Type": V2_AVRO},
                               json={"value_schema_id": 1, "records": [{"key": "k", "value": {"name": "a", "age": 1}}]},
                               timeout=10), 422, 42201),
        (lambda: avro({"name": "a", "age": 1}, schema_id=999999), 400, 400),
        (lambda: rest.produce(topic, {"value": {"type": "AVRO", "subject": "no-such-subject", "data": 1}}), 400, 400),
        (lambda: avro(1, schema='{"type": "nope"}'), 400, 400),
        (lambda: avro({"name": "a", "age": 1}, schema=USER_AVRO, subject="bad\u0001subject"), 400, 400),
        (lambda: rest.produce(topic, {"value": {"type": "PROTOBUF", "subject": f"{topic}-value", "data": {}}}), 400, 400),
        (lambda: rest.produce(topic, {"value": {"type": "BINARY", "schema_id": 1, "data": "AA=="}}), 400, 400),
        (lambda: avro({"name": "a", "age": 1}, subject_name_strategy="NOPE"), 400, 400),
    ]
    for send, status, code in checks:
        assert_error(send(), status, code)
        assert rest.healthy()
    group = unique("rest-fmt-g")
    created = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2},
                            json={"format": "avro", "name": "a"}, timeout=10)
    assert created.status_code == 200, created.text
    instance = created.json()["base_uri"]
    assert_error(requests.get(f"{instance}/records", headers={"Accept": V2_BINARY}, timeout=10), 406, 40601)
    assert requests.delete(instance, timeout=10).status_code == 204
    again = rest.produce(topic, {"value": {"type": "AVRO", "data": {"name": "b", "age": 2}}})
    assert again.status_code == 200, again.text
    assert again.json()["offset"] == 1


def test_cluster_schema_ids_registered_on_one_broker_serve_the_others(tmp_path):
    # Goal: in a 3-node cluster, a schema registered through one broker's REST proxy is
    # usable by id through another broker's proxy at once (its registry catches up with
    # `_schemas` when it does not know the id yet), and a third broker's avro consumer
    # instance decodes the records. Method: three real brokers, REST proxy and registry on
    # each; produce on node A (inline schema), node B (schema_id), consume on node C.
    from test_cluster import CLUSTER_CONFIG, Cluster, create_topic

    cluster = Cluster(tmp_path / "cluster", 3, config=CLUSTER_CONFIG)
    ports = {}
    for node_id, node in cluster.nodes.items():
        ports[node_id] = free_port()
        registry = f"127.0.0.1:{free_port()}"
        node.config_path.write_text(rest_config(ports[node_id], CLUSTER_CONFIG, registry=registry))
    try:
        cluster.start()
        cluster.wait_formed()
        topic = unique("rest-cluster-avro")
        create_topic(cluster, topic, 1, rf=1, min_isr=1)
        node_a, node_b, node_c = (Rest(ports[n]) for n in sorted(ports))
        first = wait_until(
            lambda: (lambda r: r if r.status_code == 200 else None)(node_a.produce(
                topic, {"value": {"type": "AVRO", "schema": USER_AVRO, "data": {"name": "a", "age": 1}}})),
            60, "the first Avro produce (registers the schema)")
        assert first.json()["offset"] == 0
        v2 = requests.post(f"{node_a.base}/topics/{topic}", headers={"Content-Type": V2_AVRO},
                           json={"value_schema": USER_AVRO, "records": []}, timeout=30)
        schema_id = v2.json()["value_schema_id"]
        second = node_b.produce(topic, {"value": {"type": "AVRO", "schema_id": schema_id,
                                                  "data": {"name": "b", "age": 2}}})
        assert second.status_code == 200, second.text
        got = rest_consume(node_c, "avro", V2_AVRO, topic, 2)
        assert [r["value"] for r in got] == [{"name": "a", "age": 1, "email": None},
                                             {"name": "b", "age": 2, "email": None}]
    finally:
        cluster.close()


# --------------------------------------------------------------------------------------
# v3 links, replicas, consumers and lags; v2 positions, max_bytes and timeout


def produce_to(rest: Rest, topic: str, partition: int, values: list[bytes]) -> list[int]:
    """One v3 produce request per record (so each is its own batch); their offsets."""
    offsets = []
    for value in values:
        answer = rest.produce(topic, {"partition_id": partition, "value": {"type": "BINARY", "data": b64(value)}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["partition_id"] == partition, answer.text
        offsets.append(answer.json()["offset"])
    return offsets


def links_of(document) -> list[str]:
    """Every `metadata.self`, `metadata.next` and `related` URL in a v3 answer."""
    found = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("self", "related", "next") and isinstance(value, str):
                found.append(value)
            else:
                found += links_of(value)
    elif isinstance(document, list):
        for value in document:
            found += links_of(value)
    return found


def subscribed_instance(rest: Rest, group: str, name: str, topics: list[str], partitions: int) -> str:
    created = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2},
                            json={"name": name, "format": "binary", "auto.offset.reset": "earliest",
                                  "auto.commit.enable": "false"}, timeout=10)
    assert created.status_code == 200, created.text
    instance = created.json()["base_uri"]
    subscribed = requests.post(f"{instance}/subscription", headers={"Content-Type": V2},
                               json={"topics": topics}, timeout=10)
    assert subscribed.status_code == 204, subscribed.text

    def owns_all():
        # Polling keeps the member's heartbeats and assignment moving.
        poll_binary(instance)
        return len(requests.get(f"{instance}/assignments", timeout=5).json()["partitions"]) == partitions

    wait_until(owns_all, 30, "the HTTP consumer to own every partition")
    return instance


def test_v3_replicas_and_partition_get(rest_broker):
    # Goal: a partition's `leader` link and each replica's `metadata.self` are served
    # (KafkaReplica, Confluent's fields), one partition is served (200, not only 404), a
    # broker's partition-replicas lists what it holds, and a broker that holds no replica of
    # the partition is 404. Method: a 2-partition topic on the single broker.
    broker, rest = rest_broker
    topic = unique("rest-replica")
    ck_create_topic(broker.bootstrap, topic, 2)
    partition = requests.get(f"{rest.v3}/topics/{topic}/partitions/1", timeout=5)
    assert partition.status_code == 200, partition.text
    partition = partition.json()
    assert (partition["kind"], partition["topic_name"], partition["partition_id"]) == ("KafkaPartition", topic, 1)
    assert partition["metadata"]["self"] == f"{rest.v3}/topics/{topic}/partitions/1"

    leader = requests.get(partition["leader"]["related"], timeout=5)
    assert leader.status_code == 200, leader.text
    leader = leader.json()
    assert leader == {
        "kind": "KafkaReplica",
        "metadata": {"self": f"{rest.v3}/topics/{topic}/partitions/1/replicas/1",
                     "resource_name": f"crn:///kafka={rest.cluster_id}/topic={topic}/partition=1/replica=1"},
        "cluster_id": rest.cluster_id, "topic_name": topic, "partition_id": 1, "broker_id": 1,
        "is_leader": True, "is_in_sync": True, "broker": {"related": f"{rest.v3}/brokers/1"},
    }
    listed = requests.get(partition["replicas"]["related"], timeout=5).json()
    assert listed["kind"] == "KafkaReplicaList" and listed["data"] == [leader]
    assert requests.get(leader["broker"]["related"], timeout=5).json()["broker_id"] == 1

    assert_error(requests.get(f"{rest.v3}/topics/{topic}/partitions/1/replicas/7", timeout=5), 404, 404)
    assert_error(requests.get(f"{rest.v3}/topics/{topic}/partitions/1/replicas/x", timeout=5), 404, 404)
    assert_error(requests.get(f"{rest.v3}/topics/{topic}/partitions/5/replicas/1", timeout=5), 404, 40402)

    held = requests.get(f"{rest.v3}/brokers/1/partition-replicas", timeout=5).json()
    assert held["kind"] == "KafkaReplicaList"
    mine = [(r["partition_id"], r["is_leader"]) for r in held["data"] if r["topic_name"] == topic]
    assert mine == [(0, True), (1, True)]
    assert_error(requests.get(f"{rest.v3}/brokers/7/partition-replicas", timeout=5), 404, 404)

    # No partition is being moved: the reassignment lists are empty, one partition's is 404.
    moving = requests.get(f"{rest.v3}/topics/-/partitions/-/reassignment", timeout=10).json()
    assert (moving["kind"], moving["data"]) == ("KafkaReassignmentList", [])
    moving = requests.get(f"{rest.v3}/topics/{topic}/partitions/-/reassignment", timeout=10).json()
    assert (moving["kind"], moving["data"]) == ("KafkaReassignmentList", [])
    assert_error(requests.get(f"{rest.v3}/topics/{topic}/partitions/0/reassignment", timeout=10), 404, 404)


def test_v3_every_link_the_proxy_emits_resolves(broker_factory):
    # Goal: no dangling link: every `metadata.self` and `related` URL reachable from
    # GET /v3/clusters answers 200, with the one documented exception of a partition's
    # `reassignment` while it is not being moved (404, as Confluent's proxy answers).
    # Method: a broker with an authorizer (the anonymous caller a super user, so the ACL
    # links answer too) and one ACL, a topic, a group with a member and committed offsets
    # (so consumers, assignments, lags and the lag summary's links are there), then a
    # breadth-first walk that GETs every link it finds.
    port = free_port()
    authorizer = ('"authorizer.class.name" = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"\n'
                  '"super.users" = "User:ANONYMOUS"\n')
    broker = broker_factory.new(config=rest_config(port, authorizer), name="rest-links")
    rest = Rest(port)
    topic, group = unique("rest-links"), unique("rest-links-g")
    ck_create_topic(broker.bootstrap, topic, 2)
    acl = {"resource_type": "TOPIC", "resource_name": topic, "pattern_type": "LITERAL",
           "principal": "User:alice", "host": "*", "operation": "READ", "permission": "ALLOW"}
    assert requests.post(f"{rest.v3}/acls", json=acl, timeout=10).status_code == 201
    produce_to(rest, topic, 0, [b"a", b"b", b"c"])
    instance = subscribed_instance(rest, group, "walker", [topic], 2)
    commit = requests.post(f"{instance}/offsets", headers={"Content-Type": V2},
                           json={"offsets": [{"topic": topic, "partition": 0, "offset": 0}]}, timeout=10)
    assert commit.status_code == 204, commit.text

    queue, seen, kinds = [f"{rest.base}/v3/clusters"], set(), set()
    not_moving = []
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        assert url.startswith(rest.base + "/v3/"), url
        answer = requests.get(url, timeout=15)
        if url.endswith("/reassignment") and url.split("/")[-2] != "-":
            assert_error(answer, 404, 404)
            not_moving.append(url)
            continue
        assert answer.status_code == 200, (url, answer.status_code, answer.text)
        body = answer.json()
        kinds.add(body["kind"])
        kinds.update(item["kind"] for item in body.get("data", []))
        queue += [link for link in links_of(body) if link not in seen]
        assert len(seen) < 2000, "the walk does not end"
    # The walk reached every kind of resource, the new ones included.
    assert {
        "KafkaClusterList", "KafkaCluster", "KafkaBrokerList", "KafkaBroker", "KafkaBrokerConfigList",
        "KafkaBrokerConfig", "KafkaClusterConfigList", "KafkaTopicList", "KafkaTopic", "KafkaPartitionList",
        "KafkaPartition", "KafkaReplicaList", "KafkaReplica", "KafkaTopicConfigList", "KafkaTopicConfig",
        "KafkaConsumerGroupList", "KafkaConsumerGroup", "KafkaConsumerList", "KafkaConsumer",
        "KafkaConsumerAssignmentList", "KafkaConsumerAssignment", "KafkaConsumerGroupLagSummary",
        "KafkaConsumerLag", "KafkaReassignmentList", "KafkaAclList", "KafkaAcl",
    } <= kinds, kinds
    assert f"{rest.v3}/topics/{topic}/partitions/1/reassignment" in not_moving
    assert f"{rest.v3}/consumer-groups/{group}/lags/{topic}/partitions/0" in seen
    # An assignment links its lag only where the group has committed an offset.
    [consumer] = requests.get(f"{rest.v3}/consumer-groups/{group}/consumers", timeout=10).json()["data"]
    assigned = requests.get(consumer["assignments"]["related"], timeout=10).json()["data"]
    assert [(a["partition_id"], a["lag"] is not None) for a in assigned] == [(0, True), (1, False)]


def test_v3_consumers_assignments_and_exact_lags(rest_broker):
    # Goal: a group's consumer, its assignments and its lags answer in Confluent's shapes
    # with exact numbers: lag = end offset - committed offset per partition, the summary's
    # total and maximum (and where it is) agree, and its links lead to the consumer and
    # the partition. Method: known backlogs (6, 3 and 4 records), a v2 instance owning all
    # three partitions commits known offsets (v2 commits the last consumed offset, so the
    # group stores offset + 1): committed 2, 3, 1 -> lags 4, 0, 3, total 7, max 4 on p0.
    broker, rest = rest_broker
    topic, group = unique("rest-lag"), unique("rest-lag-g")
    ck_create_topic(broker.bootstrap, topic, 3)
    for partition, count in [(0, 6), (1, 3), (2, 4)]:
        assert produce_to(rest, topic, partition, [b"x" * 10] * count) == list(range(count))
    instance = subscribed_instance(rest, group, "lagging", [topic], 3)
    commit = requests.post(f"{instance}/offsets", headers={"Content-Type": V2}, json={"offsets": [
        {"topic": topic, "partition": 0, "offset": 1},
        {"topic": topic, "partition": 1, "offset": 2},
        {"topic": topic, "partition": 2, "offset": 0},
    ]}, timeout=10)
    assert commit.status_code == 204, commit.text

    [consumer] = requests.get(f"{rest.v3}/consumer-groups/{group}/consumers", timeout=10).json()["data"]
    member = consumer["consumer_id"]
    assert member and consumer["kind"] == "KafkaConsumer"
    one = requests.get(consumer["metadata"]["self"], timeout=10)
    assert one.status_code == 200, one.text
    assert one.json() == consumer
    assert one.json()["metadata"]["self"] == f"{rest.v3}/consumer-groups/{group}/consumers/{member}"
    assignments = requests.get(consumer["assignments"]["related"], timeout=10).json()
    assert assignments["kind"] == "KafkaConsumerAssignmentList"
    assert [(a["kind"], a["consumer_id"], a["topic_name"], a["partition_id"]) for a in assignments["data"]] == [
        ("KafkaConsumerAssignment", member, topic, p) for p in range(3)]
    two = requests.get(f"{consumer['metadata']['self']}/assignments/{topic}/partitions/2", timeout=10)
    assert two.status_code == 200, two.text
    assert two.json() == assignments["data"][2]
    assert two.json()["partition"]["related"] == f"{rest.v3}/topics/{topic}/partitions/2"
    assert_error(requests.get(f"{consumer['metadata']['self']}/assignments/{topic}/partitions/9", timeout=10),
                 404, 404)
    assert_error(requests.get(f"{rest.v3}/consumer-groups/{group}/consumers/nobody", timeout=10), 404, 404)
    assert_error(requests.get(f"{rest.v3}/consumer-groups/{unique('no-group')}/consumers/x", timeout=10),
                 404, 40405)

    lags = requests.get(f"{rest.v3}/consumer-groups/{group}/lags", timeout=10).json()
    assert lags["kind"] == "KafkaConsumerLagList"
    assert [(l["partition_id"], l["current_offset"], l["log_end_offset"], l["lag"], l["consumer_id"])
            for l in lags["data"]] == [(0, 2, 6, 4, member), (1, 3, 3, 0, member), (2, 1, 4, 3, member)]
    lag2 = requests.get(f"{rest.v3}/consumer-groups/{group}/lags/{topic}/partitions/2", timeout=10).json()
    assert lag2 == lags["data"][2]
    assert requests.get(two.json()["lag"]["related"], timeout=10).json() == lag2
    assert_error(requests.get(f"{rest.v3}/consumer-groups/{group}/lags/{topic}/partitions/7", timeout=10), 404, 404)

    summary = requests.get(f"{rest.v3}/consumer-groups/{group}/lag-summary", timeout=10).json()
    assert (summary["kind"], summary["total_lag"], summary["max_lag"], summary["max_lag_topic_name"],
            summary["max_lag_partition_id"], summary["max_lag_consumer_id"]) == (
        "KafkaConsumerGroupLagSummary", 7, 4, topic, 0, member)
    assert requests.get(summary["max_lag_consumer"]["related"], timeout=10).json()["consumer_id"] == member
    assert requests.get(summary["max_lag_partition"]["related"], timeout=10).json()["partition_id"] == 0

    # A new backlog moves the maximum: 5 more records on partition 1 (lag 0 -> 5).
    produce_to(rest, topic, 1, [b"y"] * 5)
    summary = requests.get(f"{rest.v3}/consumer-groups/{group}/lag-summary", timeout=10).json()
    assert (summary["total_lag"], summary["max_lag"], summary["max_lag_partition_id"]) == (12, 5, 1)


def assigned_instance(rest: Rest, group: str, partitions: list[tuple[str, int]]) -> str:
    created = requests.post(f"{rest.base}/consumers/{group}", headers={"Content-Type": V2},
                            json={"format": "binary", "auto.offset.reset": "earliest",
                                  "auto.commit.enable": "false"}, timeout=10)
    assert created.status_code == 200, created.text
    instance = created.json()["base_uri"]
    assigned = requests.post(f"{instance}/assignments", headers={"Content-Type": V2},
                             json={"partitions": [{"topic": t, "partition": p} for t, p in partitions]}, timeout=10)
    assert assigned.status_code == 204, assigned.text
    return instance


def read_records(instance: str, query: str = "timeout=1000") -> list:
    answer = requests.get(f"{instance}/records?{query}", headers={"Accept": V2_BINARY}, timeout=HTTP_TIMEOUT_S)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_v2_records_max_bytes_bounds_the_answer_and_timeout_is_waited(rest_broker):
    # Goal: Confluent's max_bytes: an answer holds at least one record and otherwise no
    # more key+value bytes than max_bytes; what did not fit comes in the next answer (none
    # lost or repeated). With nothing to read, `timeout` is waited: the empty answer comes
    # after about that long, not at once and not much later. Method: 10 records of 1000
    # bytes produced in one v2 request (so one batch: the bound is the proxy's, per record,
    # not the fetch's, per batch), read by a manually assigned instance.
    broker, rest = rest_broker
    topic = unique("rest-maxb")
    ck_create_topic(broker.bootstrap, topic, 1)
    values = [bytes([65 + i]) * 1000 for i in range(10)]
    produced = requests.post(f"{rest.base}/topics/{topic}/partitions/0", headers={"Content-Type": V2_BINARY},
                             json={"records": [{"value": b64(v)} for v in values]}, timeout=HTTP_TIMEOUT_S)
    assert produced.status_code == 200, produced.text
    assert [o["offset"] for o in produced.json()["offsets"]] == list(range(10))
    instance = assigned_instance(rest, unique("rest-maxb-g"), [(topic, 0)])

    first = wait_until(lambda: read_records(instance, "timeout=1000&max_bytes=2500"), 20, "the first records")
    assert [(r["offset"], unb64(r["value"])) for r in first] == [(0, values[0]), (1, values[1])]
    # Smaller than one record: still one record.
    second = read_records(instance, "timeout=1000&max_bytes=10")
    assert [(r["offset"], unb64(r["value"])) for r in second] == [(2, values[2])]
    got = [r["offset"] for r in first + second]
    while len(got) < 10:
        more = read_records(instance, "timeout=1000&max_bytes=4500")
        assert more, got
        assert 1 <= len(more) <= 4, [r["offset"] for r in more]
        got += [r["offset"] for r in more]
    assert got == list(range(10))
    # Without max_bytes, 1000-byte records are not cut at 2 or 4.
    reread = assigned_instance(rest, unique("rest-maxb-g2"), [(topic, 0)])
    everything = []
    wait_until(lambda: everything.extend(read_records(reread)) or len(everything) >= 10, 20, "all records")
    assert [r["offset"] for r in everything] == list(range(10))

    for timeout_ms in (1500, 3000):
        started = time.monotonic()
        assert read_records(instance, f"timeout={timeout_ms}") == []
        waited = time.monotonic() - started
        assert 0.8 * timeout_ms / 1000 <= waited <= timeout_ms / 1000 + 2.0, (timeout_ms, waited)


def test_v2_positions_seek_to_offsets_and_to_the_end(rest_broker):
    # Goal: POST .../positions moves each named partition to the given offset (the next
    # record read is that one), other partitions keep their place; POST .../positions/end
    # skips everything there is, so only records produced afterwards are read; a partition
    # the instance does not own is 422/42202. Method: 5 and 3 known records in partitions 0
    # and 1 of a manually assigned instance.
    broker, rest = rest_broker
    topic = unique("rest-seek")
    ck_create_topic(broker.bootstrap, topic, 2)
    produce_to(rest, topic, 0, [f"p0-{i}".encode() for i in range(5)])
    produce_to(rest, topic, 1, [f"p1-{i}".encode() for i in range(3)])
    instance = assigned_instance(rest, unique("rest-seek-g"), [(topic, 0), (topic, 1)])

    def read_until(count: int) -> list:
        got = []
        wait_until(lambda: got.extend(read_records(instance)) or len(got) >= count, 20, f"{count} records")
        return [(r["partition"], r["offset"], unb64(r["value"])) for r in got]

    assert sorted(read_until(8)) == sorted([(0, i, f"p0-{i}".encode()) for i in range(5)]
                                           + [(1, i, f"p1-{i}".encode()) for i in range(3)])
    seek = requests.post(f"{instance}/positions", headers={"Content-Type": V2},
                         json={"offsets": [{"topic": topic, "partition": 0, "offset": 3},
                                           {"topic": topic, "partition": 1, "offset": 1}]}, timeout=10)
    assert seek.status_code == 204, seek.text
    assert sorted(read_until(4)) == [(0, 3, b"p0-3"), (0, 4, b"p0-4"), (1, 1, b"p1-1"), (1, 2, b"p1-2")]
    assert read_records(instance, "timeout=500") == []

    # Back to offset 0 of partition 0 only; partition 1 stays at its end.
    seek = requests.post(f"{instance}/positions", headers={"Content-Type": V2},
                         json={"offsets": [{"topic": topic, "partition": 0, "offset": 0}]}, timeout=10)
    assert seek.status_code == 204, seek.text
    assert read_until(5) == [(0, i, f"p0-{i}".encode()) for i in range(5)]

    # To the end of both after going back: nothing of the old records comes again...
    back = requests.post(f"{instance}/positions/beginning", headers={"Content-Type": V2},
                         json={"partitions": [{"topic": topic, "partition": 0}, {"topic": topic, "partition": 1}]},
                         timeout=10)
    assert back.status_code == 204, back.text
    end = requests.post(f"{instance}/positions/end", headers={"Content-Type": V2},
                        json={"partitions": [{"topic": topic, "partition": 0}, {"topic": topic, "partition": 1}]},
                        timeout=10)
    assert end.status_code == 204, end.text
    assert read_records(instance, "timeout=500") == []
    # ...only what is produced afterwards.
    assert produce_to(rest, topic, 1, [b"after"]) == [3]
    assert read_until(1) == [(1, 3, b"after")]

    other = unique("rest-seek-other")
    bad = requests.post(f"{instance}/positions", headers={"Content-Type": V2},
                        json={"offsets": [{"topic": other, "partition": 0, "offset": 1}]}, timeout=10)
    assert_error(bad, 422, 42202)
    bad = requests.post(f"{instance}/positions/end", headers={"Content-Type": V2},
                        json={"partitions": [{"topic": topic, "partition": 5}]}, timeout=10)
    assert_error(bad, 422, 42202)
    bad = requests.post(f"{instance}/positions", headers={"Content-Type": V2},
                        json={"offsets": [{"topic": topic, "partition": 0, "offset": -1}]}, timeout=10)
    assert_error(bad, 422, 42202)
