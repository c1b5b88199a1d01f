"""Produce with acks=0/1/all and consume by assign() from earliest / latest / a given
offset / a timestamp, with confluent-kafka (librdkafka) and kafka-python; high watermarks
and log start offsets as each client sees them. kcat and kafkajs have their own files."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition

from weirtest import (
    ck_consumer,
    ck_create_topic,
    ck_produce,
    ck_producer,
    ck_read,
    ck_watermarks,
    kp_consumer,
    kp_producer,
    kp_read,
    unique,
    wait_until,
)

PARTITIONS = 3
PER_PARTITION = 60


def _kp_producer(bootstrap, acks, **kw):
    return kp_producer(bootstrap, acks=acks, **kw)


def _produce(client: str, bootstrap: str, topic: str, acks, messages: list[dict]) -> list[tuple[int, int]]:
    """Produces with the named client; returns (partition, offset) per message as the client
    reported it (offset < 0 when acks=0 gives the client no offset)."""
    if client == "confluent":
        ds = ck_produce(ck_producer(bootstrap, acks=str(acks)), topic, messages)
        assert all(d.error is None for d in ds), [d.error for d in ds if d.error][:3]
        return [(d.partition, d.offset) for d in ds]
    p = _kp_producer(bootstrap, acks)
    try:
        futs = [
            p.send(
                topic,
                value=m["value"],
                key=m.get("key"),
                partition=m.get("partition"),
                timestamp_ms=m.get("timestamp"),
                headers=m.get("headers"),
            )
            for m in messages
        ]
        p.flush(timeout=30)
        out = []
        for f in futs:
            md = f.get(timeout=30)
            out.append((md.partition, md.offset))
        return out
    finally:
        p.close(timeout=10)


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_produce_acks(broker, client, acks):
    # Goal: each client can produce with acks=0, 1 and all; every record lands exactly once, in
    # order, at consecutive offsets from 0, with its timestamp and headers; for acks 1/all the
    # offsets the client was told are the offsets the records are read at; the high watermark
    # is the record count and the log start offset 0. Method: 60 records to each of 3
    # partitions, wait (bounded) for the high watermarks (acks=0 gets no answer to wait on),
    # then read everything back with confluent assign() from the beginning.
    topic = unique(f"acks-{acks}-{client}")
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    base_ts = int(time.time() * 1000) - 60_000
    messages = [
        {
            "value": f"{client}/{acks}/{i}".encode(),
            "partition": i % PARTITIONS,
            "timestamp": base_ts + i,
            "headers": [("h", f"hv{i}".encode())],
        }
        for i in range(PARTITIONS * PER_PARTITION)
    ]
    acked = _produce(client, broker.bootstrap, topic, acks, messages)

    for p in range(PARTITIONS):
        wait_until(lambda: ck_watermarks(broker.bootstrap, topic, p) == (0, PER_PARTITION), 20, f"watermarks (0, {PER_PARTITION}) on partition {p}")

    recs = ck_read(broker.bootstrap, topic, {p: OFFSET_BEGINNING for p in range(PARTITIONS)})
    assert len(recs) == len(messages), f"read {len(recs)} records, produced {len(messages)}"
    by_pos = {(r.partition, r.offset): r for r in recs}
    for p in range(PARTITIONS):
        got = sorted(r.offset for r in recs if r.partition == p)
        assert got == list(range(PER_PARTITION)), f"partition {p} offsets {got[:5]}..."
    for i, m in enumerate(messages):
        p, n = i % PARTITIONS, i // PARTITIONS
        r = by_pos[(p, n)]
        assert r.value == m["value"], (p, n, r.value, m["value"])
        assert r.timestamp == m["timestamp"], (p, n, r.timestamp, m["timestamp"])
        assert [(k, v) for k, v in r.headers] == m["headers"], r.headers
        if acks != 0:
            assert acked[i] == (p, n), f"client was told {acked[i]}, record is at {(p, n)}"


def test_kafka_python_default_idempotent_producer(broker):
    # Goal: kafka-python's producer with its defaults (acks=all => idempotence on, which
    # starts with InitProducerId) works unmodified. Method: 10 records with a default
    # KafkaProducer, read back.
    from kafka import KafkaProducer

    topic = unique("kp-default")
    ck_create_topic(broker.bootstrap, topic)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", request_timeout_ms=15000, max_block_ms=15000)
    try:
        futs = [p.send(topic, value=b"d%d" % i, partition=0) for i in range(10)]
        p.flush(timeout=30)
        assert [f.get(timeout=30).offset for f in futs] == list(range(10))
    finally:
        p.close(timeout=10)
    assert [r.value for r in ck_read(broker.bootstrap, topic, {0: OFFSET_BEGINNING})] == [b"d%d" % i for i in range(10)]


@pytest.mark.parametrize("codec, codec_id", [("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)])
def test_confluent_compression_round_trip(broker, codec, codec_id):
    # Goal: librdkafka 2.16 with compression.type=<codec> really compresses (it silently
    # falls back to uncompressed when it believes the broker lacks the codec), the broker
    # stores the batches as sent, and they read back intact. Method: 200 compressible records
    # with linger so they batch; raw Fetch v4 checks the stored codec bits and CRCs.
    from weirtest import parse_batches, raw_fetch_v4

    topic = unique(f"ck-z-{codec}")
    ck_create_topic(broker.bootstrap, topic)
    values = [b"%04d " % i + b"compress me please " * 20 for i in range(200)]
    p = ck_producer(broker.bootstrap, acks="all", **{"compression.type": codec, "linger.ms": 100})
    ds = ck_produce(p, topic, [{"value": v, "partition": 0} for v in values])
    assert all(d.error is None for d in ds)
    err, hw, raw = raw_fetch_v4(broker.bootstrap, topic, 0, 0)
    assert (err, hw) == (0, 200)
    batches = parse_batches(raw)
    assert batches and all(b.crc_ok for b in batches)
    assert {b.compression for b in batches} == {codec_id}, f"stored codecs {[b.compression for b in batches]}: librdkafka did not send {codec}"
    assert [r.value for r in ck_read(broker.bootstrap, topic, {0: OFFSET_BEGINNING})] == values


def test_large_record_round_trip(broker):
    # Goal: a record just under message.max.bytes (900 KB) is accepted and fetched back whole.
    # Method: confluent produce acks=all, read by assign(), compare bytes.
    topic = unique("large")
    ck_create_topic(broker.bootstrap, topic)
    value = bytes(range(256)) * (900_000 // 256)
    ds = ck_produce(ck_producer(broker.bootstrap, acks="all", **{"compression.type": "none"}), topic, [{"value": value, "partition": 0}])
    assert ds[0].error is None, ds[0].error
    recs = ck_read(broker.bootstrap, topic, {0: OFFSET_BEGINNING})
    assert len(recs) == 1 and recs[0].value == value


N = 100


@pytest.fixture
def ts_topic(broker):
    """One partition with N records at timestamps base + i*1000 (values r000..r099)."""
    topic = unique("positions")
    ck_create_topic(broker.bootstrap, topic)
    base = int(time.time() * 1000) - 10 * 3_600_000
    ds = ck_produce(
        ck_producer(broker.bootstrap, acks="all"),
        topic,
        [{"value": b"r%03d" % i, "partition": 0, "timestamp": base + i * 1000} for i in range(N)],
    )
    assert [d.offset for d in ds] == list(range(N))
    return topic, base


def test_confluent_assign_positions(broker, ts_topic):
    # Goal: librdkafka's assign() starts at earliest, at a given offset, at an offset looked
    # up by timestamp, and at latest (seeing only records produced afterwards); an out-of-range
    # offset resets per auto.offset.reset. Method: a topic of N records with known timestamps;
    # each start point is read until the high watermark and the offsets compared exactly.
    topic, base = ts_topic
    bs = broker.bootstrap

    assert [r.offset for r in ck_read(bs, topic, {0: OFFSET_BEGINNING})] == list(range(N))
    recs = ck_read(bs, topic, {0: 37})
    assert [r.offset for r in recs] == list(range(37, N)) and recs[0].value == b"r037"

    c = ck_consumer(bs)
    try:
        q = lambda ts: c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)[0]  # noqa: E731
        exact = q(base + 60_000)
        assert exact.error is None and exact.offset == 60, exact
        assert q(base + 60_500).offset == 61, "a timestamp between records maps to the next record"
        assert q(base - 1).offset == 0
        assert q(base + N * 1000 + 1).offset in (-1, OFFSET_END), "a timestamp after the last record maps to the end"
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, N)
    finally:
        c.close()
    recs = ck_read(bs, topic, {0: 60})
    assert recs[0].timestamp == base + 60_000 and recs[0].value == b"r060"

    # Out of range: offset 1000 on a 100-record log resets to earliest.
    recs = ck_read(bs, topic, {0: 1000})
    assert [r.offset for r in recs] == list(range(N)), "OFFSET_OUT_OF_RANGE did not lead to an earliest reset"

    # Latest: wait for EOF at N (the position is resolved), then only new records arrive.
    c = ck_consumer(bs)
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_END)])

        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "no EOF at the end of the log within 20s"
            m = c.poll(0.2)
            if m is None:
                continue
            assert m.error(), f"latest consumer got an old record at {m.offset()}"
            if m.error().code() == KafkaError._PARTITION_EOF:
                assert m.offset() == N, f"EOF at {m.offset()}, log end is {N}"
                break
        ck_produce(ck_producer(bs, acks="all"), topic, [{"value": b"new%d" % i, "partition": 0} for i in range(5)])
        recs = ck_read(bs, topic, {0: OFFSET_END}, until={0: N + 5}, consumer=c)
        assert [(r.offset, r.value) for r in recs] == [(N + i, b"new%d" % i) for i in range(5)]
    finally:
        c.close()


def test_kafka_python_assign_positions(broker, ts_topic):
    # Goal: kafka-python's assign()/seek()/seek_to_beginning()/seek_to_end()/offsets_for_times()
    # and beginning_offsets()/end_offsets() against the broker. Method: same data set as the
    # confluent test; positions and read offsets compared exactly.
    from kafka import TopicPartition as KTP

    topic, base = ts_topic
    tp = KTP(topic, 0)
    c = kp_consumer(broker.bootstrap)
    try:
        c.assign([tp])
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: N}

        c.seek_to_beginning(tp)
        assert [r.offset for r in kp_read(c, {tp: N})] == list(range(N))

        c.seek(tp, 37)
        recs = kp_read(c, {tp: N})
        assert [r.offset for r in recs] == list(range(37, N)) and recs[0].value == b"r037"

        found = c.offsets_for_times({tp: base + 60_000})[tp]
        assert found is not None and (found.offset, found.timestamp) == (60, base + 60_000), found
        assert c.offsets_for_times({tp: base + 60_500})[tp].offset == 61
        assert c.offsets_for_times({tp: base + N * 1000 + 1})[tp] is None
        c.seek(tp, found.offset)
        recs = kp_read(c, {tp: N})
        assert recs[0].offset == 60 and recs[0].timestamp == base + 60_000

        c.seek_to_end(tp)
        assert c.position(tp) == N
        _produce("kafka-python", broker.bootstrap, topic, "all", [{"value": b"new%d" % i, "partition": 0} for i in range(5)])
        recs = kp_read(c, {tp: N + 5})
        assert [(r.offset, r.value) for r in recs] == [(N + i, b"new%d" % i) for i in range(5)]
        assert c.end_offsets([tp]) == {tp: N + 5}

        # Out of range resets to earliest (auto_offset_reset='earliest').
        c.seek(tp, 1000)
        recs = kp_read(c, {tp: N + 5}, min_records=N + 5)
        assert recs[0].offset == 0 and len(recs) == N + 5
    finally:
        c.close()


def test_empty_partition_watermarks(broker):
    # Goal: an empty partition reports (0, 0) to every client and a read from earliest ends
    # at EOF 0 without records. Method: 2-partition topic, only partition 1 written.
    from kafka import TopicPartition as KTP

    topic = unique("empty")
    ck_create_topic(broker.bootstrap, topic, partitions=2)
    ck_produce(ck_producer(broker.bootstrap, acks="all"), topic, [{"value": b"x", "partition": 1}] * 3)
    assert ck_watermarks(broker.bootstrap, topic, 0) == (0, 0)
    assert ck_watermarks(broker.bootstrap, topic, 1) == (0, 3)
    assert ck_read(broker.bootstrap, topic, {0: OFFSET_BEGINNING}) == []
    c = kp_consumer(broker.bootstrap)
    try:
        tps = [KTP(topic, 0), KTP(topic, 1)]
        assert c.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
        assert c.end_offsets(tps) == {tps[0]: 0, tps[1]: 3}
    finally:
        c.close()
