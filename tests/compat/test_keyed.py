"""Keyed records: same key -> one partition, read back in the order written; and the
Java-compatible murmur2 partitioners of librdkafka (murmur2_random) and kafka-python agree
key by key. (kafkajs's default murmur2 partitioner is checked in test_kafkajs.py.)"""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING

from weirtest import KEYS, PER_KEY, ck_create_topic, ck_produce, ck_producer, ck_read, java_partition, kp_producer, unique

PARTITIONS = 6


def _messages() -> list[dict]:
    # Interleaved so per-key order is not just arrival order of a single batch.
    return [{"key": k, "value": k + b":%d" % i} for i in range(PER_KEY) for k in KEYS]


def _produce_keyed(client: str, bootstrap: str, topic: str, messages: list[dict]) -> list[int]:
    if client.startswith("confluent"):
        conf = {"acks": "all"}
        if client == "confluent-murmur2":
            conf["partitioner"] = "murmur2_random"
        ds = ck_produce(ck_producer(bootstrap, **conf), topic, messages)
        assert all(d.error is None for d in ds), [d.error for d in ds if d.error][:3]
        return [d.partition for d in ds]
    p = kp_producer(bootstrap, acks="all", max_in_flight_requests_per_connection=1)
    try:
        futs = [p.send(topic, key=m["key"], value=m["value"]) for m in messages]
        p.flush(timeout=30)
        return [f.get(timeout=30).partition for f in futs]
    finally:
        p.close(timeout=10)


def _check_keyed_read(bootstrap: str, topic: str, told: list[int], messages: list[dict]) -> dict[bytes, int]:
    recs = ck_read(bootstrap, topic, {p: OFFSET_BEGINNING for p in range(PARTITIONS)})
    assert len(recs) == len(messages)
    key_partition: dict[bytes, int] = {}
    for k in KEYS:
        mine = [r for r in recs if r.key == k]
        parts = {r.partition for r in mine}
        assert len(parts) == 1, f"key {k!r} spread over partitions {parts}"
        mine.sort(key=lambda r: r.offset)
        assert [r.value for r in mine] == [k + b":%d" % i for i in range(PER_KEY)], f"key {k!r} out of order"
        key_partition[k] = parts.pop()
    for m, p in zip(messages, told):
        assert p == key_partition[m["key"]], f"client said partition {p} for {m['key']!r}, stored in {key_partition[m['key']]}"
    return key_partition


@pytest.mark.parametrize("client", ["confluent-default", "confluent-murmur2", "kafka-python"])
def test_keyed_records_one_partition_in_order(broker, client):
    # Goal: with each client's partitioner (librdkafka's default consistent_random, librdkafka
    # murmur2_random, kafka-python's default murmur2), records sharing a key land in one
    # partition and are read back in the order written. Method: 3 keys x 50 interleaved
    # records to a 6-partition topic, read all partitions with assign(), group by key.
    topic = unique(f"keyed-{client}")
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    messages = _messages()
    told = _produce_keyed(client, broker.bootstrap, topic, messages)
    key_partition = _check_keyed_read(broker.bootstrap, topic, told, messages)
    if client != "confluent-default":
        for k, p in key_partition.items():
            assert p == java_partition(k, PARTITIONS), f"{client} put {k!r} in {p}, Java murmur2 says {java_partition(k, PARTITIONS)}"


def test_murmur2_partitioners_agree(broker):
    # Goal: the same key maps to the same partition for librdkafka murmur2_random and
    # kafka-python's default (both Java murmur2), over many keys, and the broker stores them
    # where the clients were told. Method: 40 keys, one record each, to two 7-partition topics,
    # compare the reported and the stored partitions with the Java formula.
    keys = [b"user-%d" % i for i in range(40)]
    n = 7
    t_ck, t_kp = unique("m2-ck"), unique("m2-kp")
    for t in (t_ck, t_kp):
        ck_create_topic(broker.bootstrap, t, partitions=n)
    msgs = [{"key": k, "value": k} for k in keys]
    ds = ck_produce(ck_producer(broker.bootstrap, acks="all", partitioner="murmur2_random"), t_ck, msgs)
    ck_parts = [d.partition for d in ds]
    p = kp_producer(broker.bootstrap, acks="all")
    try:
        futs = [p.send(t_kp, key=k, value=k) for k in keys]
        p.flush(timeout=30)
        kp_parts = [f.get(timeout=30).partition for f in futs]
    finally:
        p.close(timeout=10)
    expected = [java_partition(k, n) for k in keys]
    assert ck_parts == expected, "librdkafka murmur2_random disagrees with Java murmur2"
    assert kp_parts == expected, "kafka-python default partitioner disagrees with Java murmur2"
    assert len(set(expected)) > 1, "test keys all hash to one partition; pick others"
    for t in (t_ck, t_kp):
        stored = {r.key: r.partition for r in ck_read(broker.bootstrap, t, {q: OFFSET_BEGINNING for q in range(n)})}
        assert stored == dict(zip(keys, expected)), f"{t}: stored partitions differ from the reported ones"
