"""Durability across a crash: everything acknowledged with acks=all survives SIGKILL and a
restart on the same data dir, at the same offsets; topics, partition counts and topic
configs survive too; new writes continue after the old ones."""

from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka.admin import ConfigResource, ResourceType

from weirtest import (
    ck_admin,
    ck_create_topic,
    ck_partitions,
    ck_produce,
    ck_producer,
    ck_read,
    ck_watermarks,
    unique,
)

PARTITIONS = 3


def test_acked_records_survive_sigkill(fresh_broker):
    # Goal: no acknowledged record is lost or moved by a SIGKILL. Method: produce 600 records
    # with acks=all to 3 partitions (librdkafka picks partitions), remember each delivery
    # report's (partition, offset); SIGKILL right after the last ack; restart on the same data
    # dir and port; every acked record is read back at exactly its acked offset, the high
    # watermarks equal the acked counts, and a new record gets the next offset.
    b = fresh_broker
    topic = unique("persist")
    ck_create_topic(b.bootstrap, topic, partitions=PARTITIONS, config={"retention.ms": "987654321"})
    msgs = [{"value": b"v%04d" % i, "key": b"k%d" % (i % 17)} for i in range(600)]
    ds = ck_produce(ck_producer(b.bootstrap, acks="all"), topic, msgs)
    assert all(d.error is None for d in ds), [d.error for d in ds if d.error][:3]
    acked = {(d.partition, d.offset): d.value for d in ds}
    counts = {p: sum(1 for (q, _) in acked if q == p) for p in range(PARTITIONS)}

    b.kill9()
    b.start()

    assert sorted(ck_partitions(b.bootstrap, topic)) == list(range(PARTITIONS)), "topic/partitions lost"
    for p in range(PARTITIONS):
        assert ck_watermarks(b.bootstrap, topic, p) == (0, counts[p]), f"partition {p} watermarks after restart"
    recs = ck_read(b.bootstrap, topic, {p: OFFSET_BEGINNING for p in range(PARTITIONS)})
    stored = {(r.partition, r.offset): r.value for r in recs}
    assert stored == acked, f"{len(set(acked) - set(stored))} acked records missing or moved after SIGKILL"

    res = ConfigResource(ResourceType.TOPIC, topic)
    admin = ck_admin(b.bootstrap)  # must outlive the future
    cfg = admin.describe_configs([res])[res].result(timeout=15)
    assert cfg["retention.ms"].value == "987654321", "topic config lost in restart"

    d = ck_produce(ck_producer(b.bootstrap, acks="all"), topic, [{"value": b"after", "partition": 0}])[0]
    assert d.error is None and d.offset == counts[0], f"new record at {d.offset}, expected {counts[0]}"


def test_restart_twice_and_deleted_topic_stays_deleted(fresh_broker):
    # Goal: a clean restart and then a SIGKILL restart keep data; a topic deleted before the
    # crash does not come back. Method: two topics, delete one, SIGTERM restart, produce more,
    # SIGKILL restart, check both logs and the deleted topic's absence.
    b = fresh_broker
    keep, gone = unique("keep"), unique("gone")
    ck_create_topic(b.bootstrap, keep)
    ck_create_topic(b.bootstrap, gone)
    ck_produce(ck_producer(b.bootstrap, acks="all"), keep, [{"value": b"a%d" % i, "partition": 0} for i in range(10)])
    ck_produce(ck_producer(b.bootstrap, acks="all"), gone, [{"value": b"g", "partition": 0}])
    admin = ck_admin(b.bootstrap)  # must outlive the future
    admin.delete_topics([gone])[gone].result(timeout=15)

    b.restart(hard=False)
    ck_produce(ck_producer(b.bootstrap, acks="all"), keep, [{"value": b"b%d" % i, "partition": 0} for i in range(10)])
    b.restart(hard=True)

    vals = [r.value for r in ck_read(b.bootstrap, keep, {0: OFFSET_BEGINNING})]
    assert vals == [b"a%d" % i for i in range(10)] + [b"b%d" % i for i in range(10)]
    assert gone not in ck_admin(b.bootstrap).list_topics(timeout=10).topics, "deleted topic came back after restart"
