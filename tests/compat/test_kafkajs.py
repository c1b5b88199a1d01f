"""kafkajs 2.2.4 (unmodified, node 20): admin, produce with acks -1/1/0, keyed produce with
its default murmur2 partitioner, offsets, errors. The node side is kafkajs/flows.mjs; the
data it writes is read back here with confluent-kafka assign() (kafkajs consumers need
consumer groups)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING

from weirtest import HERE, KEYS, PER_KEY, ck_create_topic, ck_partitions, ck_produce, ck_producer, ck_read, ck_watermarks, java_partition, unique

PARTITIONS = 6

KAFKAJS_DIR = HERE / "kafkajs"

pytestmark = pytest.mark.kafkajs


def _flow(bootstrap: str, step: str, *args: str, timeout: float = 120) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed")
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail("kafkajs is not installed: run `npm ci` in tests/compat/kafkajs (run.sh does)")
    res = subprocess.run(
        [node, str(KAFKAJS_DIR / "flows.mjs"), bootstrap, step, *args],
        cwd=KAFKAJS_DIR,
        capture_output=True,
        timeout=timeout,
    )
    out, err = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
    assert res.returncode == 0, f"kafkajs {step} failed (exit {res.returncode}):\n{err[-4000:]}"
    return json.loads(out.strip().splitlines()[-1])


def test_kafkajs_admin(broker):
    # Goal: kafkajs admin: createTopics (1 and 3 partitions, with a config), createTopics of
    # an existing topic, listTopics, fetchTopicMetadata, createPartitions, describeCluster,
    # describeConfigs, fetchTopicOffsets on empty partitions, deleteTopics. Method: the
    # `admin` flow checks each result in node; here we cross-check with librdkafka.
    out = _flow(broker.bootstrap, "admin", unique("kjs-admin"))
    assert out["broker"]["host"] == "127.0.0.1" and out["broker"]["port"] == broker.port, out
    assert sorted(ck_partitions(broker.bootstrap, out["t1"])) == [0, 1], "kafkajs createPartitions not visible to librdkafka"


def test_kafkajs_produce_acks(broker):
    # Goal: kafkajs produces with acks -1, 1 and 0; every record is stored once, in order,
    # with its headers, and the acked base offsets match. Method: the `produce` flow sends 30
    # records per acks value over 3 partitions; read back with confluent assign().
    topic = unique("kjs-acks")
    ck_create_topic(broker.bootstrap, topic, partitions=3)
    out = _flow(broker.bootstrap, "produce", topic)
    recs = ck_read(broker.bootstrap, topic, {p: OFFSET_BEGINNING for p in range(3)})
    assert len(recs) == 90
    for p in range(3):
        mine = sorted((r for r in recs if r.partition == p), key=lambda r: r.offset)
        expected = [f"kjs/{acks}/{i}".encode() for acks in (-1, 1, 0) for i in range(30) if i % 3 == p]
        assert [r.value for r in mine] == expected, f"partition {p}"
        assert [r.offset for r in mine] == list(range(30))
        assert all(r.headers == [("h", f"hv{int(r.value.split(b'/')[2])}".encode())] for r in mine)
    for acks, base in (("-1", 0), ("1", 10)):
        got = {int(r["partition"]): int(r["baseOffset"]) for r in out["acked"][acks]}
        assert got == {0: base, 1: base, 2: base}, f"acks={acks} base offsets {got}"


def test_kafkajs_keyed_murmur2(broker):
    # Goal: kafkajs's default partitioner is Java murmur2: each key lands in the partition
    # Java (and kafka-python, librdkafka murmur2_random) would pick, all records of a key in
    # one partition in the order written. Method: `keyed` flow, then confluent assign().
    topic = unique("kjs-keyed")
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    _flow(broker.bootstrap, "keyed", topic)
    recs = ck_read(broker.bootstrap, topic, {p: OFFSET_BEGINNING for p in range(PARTITIONS)})
    assert len(recs) == len(KEYS) * PER_KEY
    for k in KEYS:
        mine = sorted((r for r in recs if r.key == k), key=lambda r: r.offset)
        assert {r.partition for r in mine} == {java_partition(k, PARTITIONS)}, f"{k!r}: {[r.partition for r in mine][:5]}"
        assert [r.value for r in mine] == [k + b":%d" % i for i in range(PER_KEY)]


def test_kafkajs_offsets(broker):
    # Goal: kafkajs fetchTopicOffsets (low/high) and fetchTopicOffsetsByTimestamp on a
    # partition of 100 records at known timestamps. Method: librdkafka writes, `offsets`
    # flow checks exact offsets in node.
    topic = unique("kjs-off")
    ck_create_topic(broker.bootstrap, topic)
    base = int(time.time() * 1000) - 3_600_000
    ck_produce(ck_producer(broker.bootstrap, acks="all"), topic, [{"value": b"r%d" % i, "partition": 0, "timestamp": base + i * 1000} for i in range(100)])
    out = _flow(broker.bootstrap, "offsets", topic, str(base))
    assert out["exact"] == "60" and out["between"] == "61"


def test_kafkajs_errors(broker):
    # Goal: kafkajs surfaces INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS and MESSAGE_TOO_LARGE
    # from the broker, and keeps working afterwards. Method: `errors` flow.
    _flow(broker.bootstrap, "errors", unique("kjs-err"))


def test_kafkajs_idempotent_producer(broker):
    # Goal: kafkajs's idempotent producer (`idempotent: true`) works against Weir: every
    # record is stored exactly once, in order, at the acknowledged offsets, and the broker
    # tracks it as one producer per partition with the right last sequence. Method: the
    # `idempotent` flow sends 4 rounds of 30 records over 3 partitions; read back with
    # confluent assign(), then `weir txn producers` shows the producer state.
    from weirtest import weir_bin

    topic = unique("kjs-idem")
    ck_create_topic(broker.bootstrap, topic, partitions=3)
    out = _flow(broker.bootstrap, "idempotent", topic)
    recs = ck_read(broker.bootstrap, topic, {p: OFFSET_BEGINNING for p in range(3)})
    assert len(recs) == 120, len(recs)
    for p in range(3):
        mine = sorted((r for r in recs if r.partition == p), key=lambda r: r.offset)
        expected = [f"kjs-idem/{rnd}/{i}".encode() for rnd in range(4) for i in range(30) if i % 3 == p]
        assert [r.value for r in mine] == expected, f"partition {p}"
        assert [r.offset for r in mine] == list(range(40))
    for a in out["acked"]:
        assert int(a["baseOffset"]) == a["round"] * 10, a
    res = subprocess.run(
        [str(weir_bin()), "txn", "producers", "--topic", topic, "--bootstrap-server", broker.bootstrap],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()[1:] if line.strip()]
    assert sorted(r[1] for r in rows) == ["0", "1", "2"], res.stdout
    assert len({r[2] for r in rows}) == 1, f"one producer id expected:\n{res.stdout}"
    assert all(r[4] == "39" and r[6] == "-" for r in rows), res.stdout


def test_kafkajs_delete_records(broker):
    # Goal: kafkajs's admin.deleteTopicRecords moves the log start (DeleteRecords); an offset
    # above the high watermark is refused with OFFSET_OUT_OF_RANGE. Cross-checked with
    # librdkafka's watermarks.
    name = unique("kjs-delrec")
    ck_create_topic(broker.bootstrap, name, partitions=1)
    out = _flow(broker.bootstrap, "deleteRecords", name)
    assert (out["low"], out["high"]) == ("3", "5"), out
    assert ck_watermarks(broker.bootstrap, name, 0) == (3, 5)
