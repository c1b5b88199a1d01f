"""kcat (Debian's, librdkafka 2.0.2): -L metadata, -P with every compression codec and acks
setting, -C -o beginning/end/N/-N/s@ts -e, -Q offsets by timestamp, -K keyed produce."""

from __future__ import annotations

import json
import re
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING

from weirtest import (
    NODE_ID,
    ck_create_topic,
    ck_produce,
    ck_producer,
    ck_read,
    ck_watermarks,
    kcat,
    parse_batches,
    raw_fetch_v4,
    unique,
    wait_until,
)

CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def _consume(bootstrap: str, topic: str, *extra: str, fmt: str = "%p\\t%o\\t%k\\t%s\\t%T\\n") -> list[list[str]]:
    res = kcat(["-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", fmt, *extra], timeout=60)
    assert res.returncode == 0, f"kcat -C failed ({res.returncode}): {res.stderr.decode()[-2000:]}"
    return [line.split("\t") for line in res.stdout.decode().splitlines()]


def test_kcat_metadata(broker):
    # Goal: kcat -L (JSON) lists broker 1 at the listening address and a topic with its 4
    # partitions, each led by node 1. Method: create via librdkafka admin, parse kcat -L -J.
    topic = unique("kcat-md")
    ck_create_topic(broker.bootstrap, topic, partitions=4)
    res = kcat(["-L", "-J", "-b", broker.bootstrap, "-t", topic], timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    md = json.loads(res.stdout)
    assert [(b["id"], b["name"]) for b in md["brokers"]] == [(NODE_ID, broker.bootstrap)], md["brokers"]
    (t,) = [t for t in md["topics"] if t["topic"] == topic]
    assert "error" not in t or not t["error"], t
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2, 3]
    assert all(p["leader"] == NODE_ID for p in t["partitions"]), t["partitions"]
    # Plain-text -L for all topics works too and names the topic.
    res = kcat(["-L", "-b", broker.bootstrap], timeout=30)
    assert res.returncode == 0 and f'topic "{topic}" with 4 partitions' in res.stdout.decode(), res.stdout.decode()[-2000:]


@pytest.mark.parametrize("codec", list(CODEC_IDS))
def test_kcat_compression_round_trip(broker, codec):
    # Goal: kcat -z <codec> produces batches the broker stores as sent (compressed, valid
    # CRC) and serves back: kcat and librdkafka both decompress the exact lines in order.
    # Method: 300 compressible lines in one kcat -P run with linger so they batch; raw Fetch
    # v4 inspects the stored batches' codec bits; kcat -C -o beginning -e and confluent read
    # them back.
    topic = unique(f"kcat-z-{codec}")
    ck_create_topic(broker.bootstrap, topic)
    lines = [f"line {i:04d} " + "weir compresses well " * 8 for i in range(300)]
    args = ["-P", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-X", "linger.ms=200", "-X", "acks=all"]
    if codec != "none":
        args += ["-z", codec]
    res = kcat(args, stdin=("\n".join(lines) + "\n").encode(), timeout=60)
    assert res.returncode == 0, f"kcat -P -z {codec} failed: {res.stderr.decode()[-2000:]}"
    assert ck_watermarks(broker.bootstrap, topic, 0) == (0, 300)

    err, hw, raw = raw_fetch_v4(broker.bootstrap, topic, 0, 0)
    assert err == 0 and hw == 300
    batches = parse_batches(raw)
    assert batches, "Fetch returned no batches"
    assert all(b.crc_ok for b in batches), "a served batch fails its CRC32C"
    assert {b.compression for b in batches} == {CODEC_IDS[codec]}, f"stored codecs {[b.compression for b in batches]}, sent {codec}"
    if codec != "none":
        assert len(batches) < 300, "records were not batched; the codec check is weak"

    rows = _consume(broker.bootstrap, topic, "-o", "beginning")
    assert [r[3] for r in rows] == lines
    assert [int(r[1]) for r in rows] == list(range(300))
    recs = ck_read(broker.bootstrap, topic, {0: OFFSET_BEGINNING})
    assert [r.value.decode() for r in recs] == lines


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_kcat_produce_acks(broker, acks):
    # Goal: kcat -P with acks 0/1/all delivers every line. Method: 50 lines, then a bounded
    # wait for the high watermark (acks=0 has no reply) and a kcat read.
    topic = unique(f"kcat-acks-{acks}")
    ck_create_topic(broker.bootstrap, topic)
    lines = [f"a{acks}-{i}" for i in range(50)]
    res = kcat(["-P", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-X", f"acks={acks}"], stdin="\n".join(lines).encode() + b"\n")
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    wait_until(lambda: ck_watermarks(broker.bootstrap, topic, 0) == (0, 50), 20, "high watermark 50")
    assert [r[3] for r in _consume(broker.bootstrap, topic, "-o", "beginning")] == lines


def test_kcat_consume_offsets_and_query(broker):
    # Goal: kcat -C -e from beginning, end, absolute offset, relative-from-end and s@timestamp,
    # and kcat -Q (ListOffsets by timestamp, -1 end, -2 beginning). Method: 100 records with
    # timestamps base + i*1000 produced by librdkafka; exact offsets compared.
    topic = unique("kcat-off")
    ck_create_topic(broker.bootstrap, topic)
    base = int(time.time() * 1000) - 7_200_000
    ck_produce(ck_producer(broker.bootstrap, acks="all"), topic, [{"value": b"r%03d" % i, "partition": 0, "timestamp": base + i * 1000} for i in range(100)])

    rows = _consume(broker.bootstrap, topic, "-o", "beginning")
    assert [int(r[1]) for r in rows] == list(range(100))
    assert [int(r[4]) for r in rows] == [base + i * 1000 for i in range(100)], "timestamps changed"
    assert _consume(broker.bootstrap, topic, "-o", "end") == []
    assert [int(r[1]) for r in _consume(broker.bootstrap, topic, "-o", "37")] == list(range(37, 100))
    assert [int(r[1]) for r in _consume(broker.bootstrap, topic, "-o", "-5")] == list(range(95, 100))
    assert [int(r[1]) for r in _consume(broker.bootstrap, topic, "-o", f"s@{base + 60_000}")] == list(range(60, 100))
    assert [int(r[1]) for r in _consume(broker.bootstrap, topic, "-o", f"s@{base + 60_500}")] == list(range(61, 100))

    def query(ts: int) -> int:
        res = kcat(["-Q", "-b", broker.bootstrap, "-t", f"{topic}:0:{ts}"], timeout=30)
        assert res.returncode == 0, res.stderr.decode()
        m = re.search(r"\[0\]\s+offset\s+(-?\d+)", res.stdout.decode())
        assert m, res.stdout.decode()
        return int(m.group(1))

    assert query(base + 60_000) == 60
    assert query(base + 60_500) == 61
    assert query(base) == 0
    assert query(-1) == 100
    assert query(-2) == 0


def test_kcat_keyed_produce(broker):
    # Goal: kcat -K produces keyed records; records of one key share a partition and keep
    # their order. Method: 3 keys x 30 lines "key:value" to a 5-partition topic, kcat read.
    topic = unique("kcat-keyed")
    ck_create_topic(broker.bootstrap, topic, partitions=5)
    keys = ["kA", "kB", "kC"]
    lines = [f"{k}:{k}-{i}" for i in range(30) for k in keys]
    res = kcat(["-P", "-b", broker.bootstrap, "-t", topic, "-K", ":", "-X", "acks=all"], stdin="\n".join(lines).encode() + b"\n")
    assert res.returncode == 0, res.stderr.decode()
    rows = _consume(broker.bootstrap, topic, "-o", "beginning")
    assert len(rows) == 90
    for k in keys:
        mine = sorted(((int(r[0]), int(r[1]), r[3]) for r in rows if r[2] == k), key=lambda x: x[1])
        assert len({p for p, _, _ in mine}) == 1, f"key {k} in several partitions"
        assert [v for _, _, v in mine] == [f"{k}-{i}" for i in range(30)]
