"""DeleteRecords (kafka-delete-records.sh, AdminClient.deleteRecords) through unmodified
clients: confluent-kafka's and kafka-python's admin clients and `weir topic delete-records`,
against a real `weir` process. The log start moves to the offset asked for, reads below it
fail with OFFSET_OUT_OF_RANGE and consumers from the beginning start there, Kafka's
refusals come back with Kafka's codes, and a deletion survives `kill -9`. kafkajs's
`deleteTopicRecords` is in test_kafkajs.py."""

from __future__ import annotations

import json
import subprocess

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, KafkaException, TopicPartition

from weirtest import (
    ck_admin,
    ck_create_topic,
    ck_produce,
    ck_producer,
    ck_read,
    ck_watermarks,
    kp_admin,
    unique,
    weir_bin,
)


def fill(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    producer = ck_producer(bootstrap, acks="all")
    messages = [{"value": f"v{p}-{i}".encode(), "partition": p} for p in range(partitions) for i in range(per_partition)]
    ck_produce(producer, topic, messages)


def delete(admin, tps: list[TopicPartition]):
    futures = admin.delete_records(tps, request_timeout=15, operation_timeout=10)
    return {(tp.topic, tp.partition): f for tp, f in futures.items()}


def test_confluent_delete_records(fresh_broker):
    # Goal: librdkafka's DeleteRecords moves each partition's log start (an offset, and
    # OFFSET_END = the high watermark), consumers from the beginning start there, a fetch
    # below it is out of range, and the deletion survives a SIGKILL and restart.
    broker = fresh_broker
    name = unique("delrec")
    ck_create_topic(broker.bootstrap, name, partitions=2)
    fill(broker.bootstrap, name, 2, 10)
    admin = ck_admin(broker.bootstrap)
    results = delete(admin, [TopicPartition(name, 0, 4), TopicPartition(name, 1, OFFSET_END)])
    assert results[(name, 0)].result(timeout=20).low_watermark == 4
    assert results[(name, 1)].result(timeout=20).low_watermark == 10
    assert ck_watermarks(broker.bootstrap, name, 0) == (4, 10)
    assert ck_watermarks(broker.bootstrap, name, 1) == (10, 10)
    rows = ck_read(broker.bootstrap, name, {0: OFFSET_BEGINNING}, until={0: 10})
    assert [r.offset for r in rows] == list(range(4, 10)), [r.offset for r in rows]
    assert rows[0].value == b"v0-4"

    broker.restart(hard=True)
    assert ck_watermarks(broker.bootstrap, name, 0) == (4, 10)
    assert ck_watermarks(broker.bootstrap, name, 1) == (10, 10)
    # New records go on at the end; the deleted offsets are not reused.
    fill(broker.bootstrap, name, 2, 1)
    assert ck_watermarks(broker.bootstrap, name, 1) == (10, 11)


def test_confluent_delete_records_refusals(broker):
    # Goal: Kafka's refusals with Kafka's codes: an offset above the high watermark
    # (OFFSET_OUT_OF_RANGE), a compacted topic (POLICY_VIOLATION). (librdkafka refuses an
    # unknown partition itself; the broker's answer to one is a weir-core test.)
    name = unique("delrec-bad")
    compacted = unique("delrec-compact")
    ck_create_topic(broker.bootstrap, name, partitions=1)
    ck_create_topic(broker.bootstrap, compacted, partitions=1, config={"cleanup.policy": "compact"})
    fill(broker.bootstrap, name, 1, 3)
    ck_produce(ck_producer(broker.bootstrap, acks="all"), compacted, [{"key": b"k", "value": b"v", "partition": 0}])
    admin = ck_admin(broker.bootstrap)

    def error_of(tp: TopicPartition) -> int:
        future = delete(admin, [tp])[(tp.topic, tp.partition)]
        with pytest.raises(KafkaException) as raised:
            future.result(timeout=20)
        return raised.value.args[0].code()

    assert error_of(TopicPartition(name, 0, 4)) == KafkaError.OFFSET_OUT_OF_RANGE
    assert error_of(TopicPartition(compacted, 0, 1)) == KafkaError.POLICY_VIOLATION
    # Nothing was deleted by the refusals.
    assert ck_watermarks(broker.bootstrap, name, 0) == (0, 3)


def test_kafka_python_delete_records(broker):
    # Goal: kafka-python's KafkaAdminClient.delete_records moves the log start too.
    from kafka import TopicPartition as KpTP

    name = unique("delrec-kp")
    ck_create_topic(broker.bootstrap, name, partitions=1)
    fill(broker.bootstrap, name, 1, 8)
    kp = kp_admin(broker.bootstrap)
    try:
        result = kp.delete_records({KpTP(name, 0): 6}, timeout_ms=15_000)
        low = result[KpTP(name, 0)]
        low = low["low_watermark"] if isinstance(low, dict) else getattr(low, "low_watermark", low)
        assert low == 6, result
    finally:
        kp.close()
    assert ck_watermarks(broker.bootstrap, name, 0) == (6, 8)


def test_weir_cli_delete_records(broker, tmp_path):
    # Goal: `weir topic delete-records` with a partition and an offset, and with Kafka's
    # --offset-json-file (kafka-delete-records.sh's format); a refusal exits non-zero.
    name = unique("delrec-cli")
    ck_create_topic(broker.bootstrap, name, partitions=2)
    fill(broker.bootstrap, name, 2, 5)
    cli = [str(weir_bin()), "topic", "delete-records"]
    done = subprocess.run(cli + [name, "--partition", "0", "--offset", "2", "--bootstrap-server", broker.bootstrap],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "low_watermark: 2" in done.stdout, done.stdout
    spec = tmp_path / "offsets.json"
    spec.write_text(json.dumps({"partitions": [{"topic": name, "partition": 1, "offset": 3}], "version": 1}))
    done = subprocess.run(cli + ["--offset-json-file", str(spec), "--bootstrap-server", broker.bootstrap],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ck_watermarks(broker.bootstrap, name, 0) == (2, 5)
    assert ck_watermarks(broker.bootstrap, name, 1) == (3, 5)
    refused = subprocess.run(cli + [name, "--partition", "0", "--offset", "99", "--bootstrap-server", broker.bootstrap],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "OFFSET_OUT_OF_RANGE" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
