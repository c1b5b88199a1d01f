"""Transactions with real clients (confluent-kafka / librdkafka).

Goal: Weir's transaction coordinator gives librdkafka's transactional producer Kafka's
semantics: committed records become visible to read_committed consumers, aborted and open
ones never do (read_uncommitted sees everything), a transaction left open past
transaction.timeout.ms is aborted, a re-initialized transactional id fences its zombie,
and a consume-transform-produce loop using send_offsets_to_transaction produces exactly
one output per input across a SIGKILL mid-transaction.

Method: each test creates its own topics on the shared broker (the EOS test has its own
broker and runs the loop as a separate process it can kill), produces through
transactions, then reads with read_committed and read_uncommitted consumers using
bounded waits.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from weirtest import ck_consumer, ck_create_topic, ck_producer, ck_read, unique, wait_until


def txn_producer(bootstrap: str, txn_id: str, **conf):
    settings = {"transactional.id": txn_id, "transaction.timeout.ms": 10000, **conf}
    settings.setdefault("message.timeout.ms", settings["transaction.timeout.ms"])
    return ck_producer(bootstrap, **settings)


def values(records) -> list[bytes]:
    return [r.value for r in records]


def read_committed(bootstrap: str, topic: str, expect: int, timeout: float = 20):
    """Read every committed record of partition 0 from the start (until its LSO)."""
    c = ck_consumer(bootstrap, **{"isolation.level": "read_committed"})
    try:
        from confluent_kafka import TopicPartition

        _, end = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        out = ck_read(bootstrap, topic, {0: 0}, until={0: end}, timeout=timeout, consumer=_assigned(c, topic))
        return out
    finally:
        c.close()


def _assigned(c, topic):
    from confluent_kafka import TopicPartition

    c.assign([TopicPartition(topic, 0, 0)])
    return c


def test_commit_and_abort_visibility(broker):
    topic = unique("txn-vis")
    ck_create_topic(broker.bootstrap, topic)
    p = txn_producer(broker.bootstrap, unique("tid"))
    p.init_transactions(15)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"committed-{i}".encode(), partition=0)
    p.commit_transaction(15)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"aborted-{i}".encode(), partition=0)
    p.flush(10)
    p.abort_transaction(15)
    p.begin_transaction()
    p.produce(topic, value=b"committed-3", partition=0)
    p.commit_transaction(15)

    got = values(read_committed(broker.bootstrap, topic, 4))
    assert got == [f"committed-{i}".encode() for i in range(4)], got

    uncommitted = ck_consumer(broker.bootstrap, **{"isolation.level": "read_uncommitted"})
    try:
        all_values = values(ck_read(broker.bootstrap, topic, {0: 0}, consumer=_assigned(uncommitted, topic)))
    finally:
        uncommitted.close()
    assert set(all_values) == {f"committed-{i}".encode() for i in range(4)} | {f"aborted-{i}".encode() for i in range(3)}


def test_open_transaction_is_invisible_to_read_committed(broker):
    topic = unique("txn-open")
    ck_create_topic(broker.bootstrap, topic)
    plain = ck_producer(broker.bootstrap)
    plain.produce(topic, value=b"before", partition=0)
    assert plain.flush(10) == 0
    p = txn_producer(broker.bootstrap, unique("tid"))
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(topic, value=b"open", partition=0)
    assert p.flush(10) == 0
    plain.produce(topic, value=b"after", partition=0)
    assert plain.flush(10) == 0

    from confluent_kafka import TopicPartition

    c = ck_consumer(broker.bootstrap, **{"isolation.level": "read_committed"})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        seen = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.append(m.value())
        # The LSO stops at the open transaction: "after" waits behind it.
        assert seen == [b"before"], seen
        p.commit_transaction(15)
        deadline = time.monotonic() + 10
        while len(seen) < 3 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.append(m.value())
        assert seen == [b"before", b"open", b"after"], seen
    finally:
        c.close()


def test_timeout_aborts(broker):
    topic = unique("txn-timeout")
    ck_create_topic(broker.bootstrap, topic)
    p = txn_producer(broker.bootstrap, unique("tid"), **{"transaction.timeout.ms": 2000})
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(topic, value=b"doomed", partition=0)
    assert p.flush(10) == 0
    time.sleep(4)
    with pytest.raises(Exception):
        p.commit_transaction(15)
    # The coordinator wrote the abort marker: the LSO moved past the doomed record.
    got = values(read_committed(broker.bootstrap, topic, 0))
    assert got == [], got


def test_zombie_is_fenced(broker):
    topic = unique("txn-zombie")
    ck_create_topic(broker.bootstrap, topic)
    tid = unique("tid")
    zombie = txn_producer(broker.bootstrap, tid)
    zombie.init_transactions(15)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie", partition=0)
    assert zombie.flush(10) == 0
    fresh = txn_producer(broker.bootstrap, tid)
    fresh.init_transactions(15)  # aborts the zombie's transaction, bumps the epoch
    fresh.begin_transaction()
    fresh.produce(topic, value=b"fresh", partition=0)
    fresh.commit_transaction(15)
    with pytest.raises(Exception):
        zombie.commit_transaction(15)
    assert values(read_committed(broker.bootstrap, topic, 1)) == [b"fresh"]


EOS_LOOP = textwrap.dedent(
    """
    import sys, json
    from confluent_kafka import Consumer, Producer, TopicPartition
    bootstrap, src, dst, group, tid, slow = sys.argv[1:7]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": 10000})
    p.init_transactions(30)
    c.assign([TopicPartition(src, 0)])
    done = 0
    while True:
        msgs = c.consume(num_messages=5, timeout=1.0)
        msgs = [m for m in msgs if not m.error()]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(dst, value=b"out-" + m.value(), partition=0)
        p.flush(10)
        print(json.dumps({"batch": [m.offset() for m in msgs]}), flush=True)
        if slow == "1":
            import time; time.sleep(0.5)
        offsets = [TopicPartition(src, 0, msgs[-1].offset() + 1)]
        p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        done += len(msgs)
        print(json.dumps({"committed": done}), flush=True)
    """
)


def test_exactly_once_loop_survives_sigkill(fresh_broker, tmp_path):
    b = fresh_broker
    src, dst = unique("eos-in"), unique("eos-out")
    ck_create_topic(b.bootstrap, src)
    ck_create_topic(b.bootstrap, dst)
    n = 40
    plain = ck_producer(b.bootstrap, **{"enable.idempotence": True})
    for i in range(n):
        plain.produce(src, value=f"{i}".encode(), partition=0)
    assert plain.flush(10) == 0
    script = tmp_path / "eos_loop.py"
    script.write_text(EOS_LOOP)
    group, tid = unique("eos-group"), unique("eos-tid")

    def start(slow: str):
        return subprocess.Popen([sys.executable, str(script), b.bootstrap, src, dst, group, tid, slow],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = start("1")
    try:
        # Kill it after it committed at least once and is inside another transaction.
        committed = 0
        deadline = time.monotonic() + 30
        batches = 0
        while time.monotonic() < deadline:
            line = first.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            committed = event.get("committed", committed)
            batches += "batch" in event
            if committed > 0 and batches >= 3 and "batch" in event:
                break
        assert committed > 0, f"loop never committed: {first.stderr.read()[-2000:] if first.poll() is not None else ''}"
        first.kill()
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = start("0")
    try:
        deadline = time.monotonic() + 60
        got = []
        while time.monotonic() < deadline:
            got = values(read_committed(b.bootstrap, dst, n, timeout=20))
            if len(got) >= n:
                break
            time.sleep(0.5)
    finally:
        second.kill()
        second.wait(10)
    expected = sorted(f"out-{i}".encode() for i in range(n))
    assert sorted(got) == expected, f"{len(got)} outputs, duplicates={len(got) - len(set(got))}"
