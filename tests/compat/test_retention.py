"""Retention: old data is deleted by size (retention.bytes) and by age (retention.ms), the
log start offset moves forward, and every client sees the same, correct log start offset
(low watermark) while the high watermark stays put."""

from __future__ import annotations

import re
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from confluent_kafka.admin import ConfigResource, NewTopic, OffsetSpec, ResourceType

from weirtest import (
    ck_admin,
    ck_produce,
    ck_producer,
    ck_read,
    ck_watermarks,
    kcat,
    kp_consumer,
    unique,
    wait_until,
)

# The broker checks retention every 200 ms instead of every 5 minutes.
CONFIG = '"log.retention.check.interval.ms" = 200\n'
SMALL_SEGMENT = 1024
KAFKA_MIN_SEGMENT = 1_048_576


def _create(bootstrap: str, name: str, configs: dict) -> int:
    """Creates a 1-partition topic with a tiny segment.bytes if the broker accepts it, else
    Kafka's minimum (1 MiB). Returns the segment size in force."""
    admin = ck_admin(bootstrap)
    for seg in (SMALL_SEGMENT, KAFKA_MIN_SEGMENT):
        cfg = {**configs, "segment.bytes": str(seg)}
        f = admin.create_topics([NewTopic(name, 1, 1, config=cfg)])[name]
        try:
            f.result(timeout=15)
        except Exception as exc:  # noqa: BLE001
            code = exc.args[0].code()
            assert code == KafkaError.INVALID_CONFIG, f"create with segment.bytes={seg}: {exc}"
            continue
        res = ConfigResource(ResourceType.TOPIC, name)
        got = admin.describe_configs([res])[res].result(timeout=15)
        assert got["segment.bytes"].value == str(seg), f"segment.bytes accepted as {seg}, described as {got['segment.bytes'].value}"
        for k, v in configs.items():
            assert got[k].value == v, f"{k}: described {got[k].value}, created with {v}"
        return seg
    pytest.fail("broker refused both a tiny and Kafka's minimum segment.bytes")


def _produce_waves(bootstrap: str, topic: str, waves: int, per_wave: int, size: int, timestamp: int | None = None) -> int:
    """Produces in separate flushed waves so the log gets many batches (and segments)."""
    p = ck_producer(bootstrap, acks="all", **{"linger.ms": 0, "compression.type": "none"})
    n = 0
    for _ in range(waves):
        msgs = []
        for _ in range(per_wave):
            msgs.append({"value": (b"%06d-" % n).ljust(size, b"z"), "partition": 0, "timestamp": timestamp})
            n += 1
        ds = ck_produce(p, topic, msgs)
        assert all(d.error is None for d in ds), [d.error for d in ds if d.error][:3]
    return n


def _check_log_start_everywhere(bootstrap: str, topic: str, low: int, high: int) -> None:
    """All clients agree on (low, high), and reading from before `low` starts at `low`."""
    admin = ck_admin(bootstrap)
    tp = TopicPartition(topic, 0)
    assert admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(timeout=15).offset == low
    assert admin.list_offsets({tp: OffsetSpec.latest()})[tp].result(timeout=15).offset == high

    from kafka import TopicPartition as KTP

    c = kp_consumer(bootstrap)
    try:
        k = KTP(topic, 0)
        assert c.beginning_offsets([k]) == {k: low}
        assert c.end_offsets([k]) == {k: high}
    finally:
        c.close()

    res = kcat(["-Q", "-b", bootstrap, "-t", f"{topic}:0:-2"], timeout=30)
    m = re.search(r"\[0\]\s+offset\s+(-?\d+)", res.stdout.decode())
    assert m and int(m.group(1)) == low, f"kcat -Q -2: {res.stdout.decode()} {res.stderr.decode()[-500:]}"

    recs = ck_read(bootstrap, topic, {0: OFFSET_BEGINNING}, until={0: high})
    assert recs and recs[0].offset == low, f"earliest read starts at {recs[0].offset if recs else None}, log start {low}"
    assert [r.offset for r in recs] == list(range(low, high))
    assert recs[0].value.startswith(b"%06d-" % low), "the record at the log start offset has the wrong content"
    # Offset 0 is now out of range: auto.offset.reset=earliest lands on the log start.
    recs = ck_read(bootstrap, topic, {0: 0}, until={0: high})
    assert recs[0].offset == low


def test_retention_bytes_moves_log_start(broker_factory):
    # Goal: with retention.bytes small, closed segments beyond the limit are deleted and the
    # log start offset advances, without touching the high watermark. Method: topic with a
    # tiny (or Kafka-minimum) segment.bytes and retention.bytes of two segments; produce
    # ~10 segments worth in separate waves; poll the low watermark (bounded) until it moves;
    # then every client must agree on it.
    b = broker_factory.new(config=CONFIG, name="ret-bytes")
    topic = unique("ret-bytes")
    seg = _create(b.bootstrap, topic, {"retention.bytes": str(2 * SMALL_SEGMENT)})
    if seg != SMALL_SEGMENT:
        # Same shape at Kafka's minimum segment size: retention.bytes = 2 segments.
        admin = ck_admin(b.bootstrap)  # must outlive the future
        admin.delete_topics([topic])[topic].result(timeout=15)
        topic = unique("ret-bytes-1m")
        seg = _create(b.bootstrap, topic, {"retention.bytes": str(2 * KAFKA_MIN_SEGMENT)})
    size = max(seg // 4, 200)
    n = _produce_waves(b.bootstrap, topic, waves=40, per_wave=1, size=size)

    low, high = wait_until(lambda: (w := ck_watermarks(b.bootstrap, topic, 0))[0] > 0 and w, 30, "log start offset to advance")
    assert high == n, f"high watermark {high} after retention, {n} produced"
    assert low < high, "retention deleted the active segment"
    # About retention.bytes / record size records must remain (allow a segment of slack).
    kept_bytes = (high - low) * size
    assert kept_bytes >= 2 * seg - seg, f"retention kept only {kept_bytes} bytes, limit {2 * seg}"
    # Wait until retention settles (no more than limit + one active segment + one batch).
    wait_until(lambda: (high - ck_watermarks(b.bootstrap, topic, 0)[0]) * size <= 3 * seg + size, 30, "retention to reach its limit")
    low, _ = ck_watermarks(b.bootstrap, topic, 0)
    _check_log_start_everywhere(b.bootstrap, topic, low, high)


def test_retention_ms_moves_log_start(broker_factory):
    # Goal: records older than retention.ms (by their CreateTime) are deleted a segment at a
    # time and the log start offset advances; newer records stay. Method: 30 old records
    # (timestamp 2 h ago) in waves filling several segments, then 5 fresh ones; retention.ms
    # = 60 s; poll until the low watermark passes some old records; no fresh record may go.
    b = broker_factory.new(config=CONFIG, name="ret-ms")
    topic = unique("ret-ms")
    seg = _create(b.bootstrap, topic, {"retention.ms": "60000"})
    size = max(seg // 3, 200)
    old_ts = int(time.time() * 1000) - 2 * 3_600_000
    n_old = _produce_waves(b.bootstrap, topic, waves=30, per_wave=1, size=size, timestamp=old_ts)
    p = ck_producer(b.bootstrap, acks="all", **{"linger.ms": 0})
    fresh = ck_produce(p, topic, [{"value": (b"%06d-" % (n_old + i)).ljust(size, b"f"), "partition": 0} for i in range(5)])
    assert [d.offset for d in fresh] == list(range(n_old, n_old + 5))

    low, high = wait_until(lambda: (w := ck_watermarks(b.bootstrap, topic, 0))[0] >= n_old // 2 and w, 30, "old segments to be deleted")
    assert high == n_old + 5
    assert low <= n_old, f"log start {low} is past the last old record {n_old - 1}: fresh data deleted"
    _check_log_start_everywhere(b.bootstrap, topic, low, high)
