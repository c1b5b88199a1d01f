"""Idempotent producers of real clients through a broker crash.

Job: show that librdkafka (confluent-kafka, enable.idempotence=true) and kafka-python (its
default producer: idempotence on with acks=all) write every record exactly once, in order,
while the broker is SIGKILLed and restarted under them. A batch appended and synced just
before the kill is retried by the client after the restart; the broker must recognise it
from its producer id and sequence (state rebuilt at recovery) and answer with the original
offset instead of appending it again.
"""

from __future__ import annotations

import threading
import time

from weirtest import ck_create_topic, ck_producer, ck_read, unique, wait_until

from confluent_kafka import OFFSET_BEGINNING

RECORDS = 3000
KILL_AFTER = (800, 1900)


def _kill_and_restart_while(broker, acked_count, done) -> int:
    """SIGKILLs and restarts the broker each time the producer passes a KILL_AFTER mark.
    Returns how many restarts happened."""
    restarts = 0
    for mark in KILL_AFTER:
        wait_until(lambda: acked_count() >= mark or done.is_set(), 60, f"{mark} acks")
        if done.is_set():
            break
        broker.kill9()
        # A short outage: the client sees refused connections and retries in-flight batches.
        time.sleep(0.3)
        broker.start()
        restarts += 1
    return restarts


def _assert_exactly_once(bootstrap: str, topic: str) -> None:
    values = [r.value for r in ck_read(bootstrap, topic, {0: OFFSET_BEGINNING}, timeout=60)]
    expected = [b"r%05d" % i for i in range(RECORDS)]
    duplicates = len(values) - len(set(values))
    assert duplicates == 0, f"{duplicates} duplicated records"
    assert values == expected, f"{len(values)} records, first difference at {next((i for i, (a, b) in enumerate(zip(values, expected)) if a != b), min(len(values), len(expected)))}"


def test_confluent_idempotent_producer_survives_broker_kill(fresh_broker):
    # Goal: librdkafka's idempotent producer loses and duplicates nothing across two broker
    # SIGKILL+restarts mid-stream. Method: a background thread produces RECORDS records to
    # one partition with small batches; the broker is killed at two ack counts; then every
    # record must be read back once, in send order.
    b = fresh_broker
    topic = unique("ck-idem")
    ck_create_topic(b.bootstrap, topic)
    p = ck_producer(
        b.bootstrap,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "batch.num.messages": 20,
            "message.timeout.ms": 120000,
            "retry.backoff.ms": 50,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
        },
    )
    acked = []
    errors = []
    done = threading.Event()

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append(msg.offset())

    def run():
        try:
            for i in range(RECORDS):
                while True:
                    try:
                        p.produce(topic, value=b"r%05d" % i, partition=0, on_delivery=on_delivery)
                        break
                    except BufferError:
                        p.poll(0.05)
                p.poll(0)
                if i % 20 == 0:
                    # Spread the stream over the restarts: on a fast run all 3000 were
                    # acked before the first kill mark was seen (CI, once).
                    time.sleep(0.01)
            assert p.flush(120) == 0, "undelivered records"
        finally:
            done.set()

    producer_thread = threading.Thread(target=run, daemon=True)
    producer_thread.start()
    restarts = _kill_and_restart_while(b, lambda: len(acked), done)
    producer_thread.join(timeout=150)
    assert not producer_thread.is_alive(), "producer did not finish"
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(acked) == RECORDS
    assert restarts >= 1, "the stream finished before the first kill: nothing was tested"
    assert sorted(acked) == list(range(RECORDS)), "acknowledged offsets are not 0..n-1"
    _assert_exactly_once(b.bootstrap, topic)


def test_kafka_python_default_producer_survives_broker_kill(fresh_broker):
    # Goal: kafka-python's default producer (acks=all turns idempotence on) writes every record
    # exactly once across broker SIGKILL+restarts. Method: as above, with KafkaProducer
    # defaults except short timeouts/backoffs; futures give the acknowledged offsets.
    from kafka import KafkaProducer

    b = fresh_broker
    topic = unique("kp-idem")
    ck_create_topic(b.bootstrap, topic)
    p = KafkaProducer(
        bootstrap_servers=b.bootstrap,
        acks="all",
        linger_ms=2,
        batch_size=400,
        request_timeout_ms=5000,
        delivery_timeout_ms=120000,
        retry_backoff_ms=50,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=500,
        max_block_ms=60000,
    )
    futures = []
    done = threading.Event()

    def run():
        try:
            for i in range(RECORDS):
                futures.append(p.send(topic, value=b"r%05d" % i, partition=0))
                if i % 20 == 0:
                    time.sleep(0.01)
            p.flush(timeout=120)
        finally:
            done.set()

    producer_thread = threading.Thread(target=run, daemon=True)
    producer_thread.start()
    restarts = _kill_and_restart_while(b, lambda: sum(1 for f in list(futures) if f.is_done), done)
    producer_thread.join(timeout=150)
    try:
        assert not producer_thread.is_alive(), "producer did not finish"
        offsets = [f.get(timeout=30).offset for f in futures]
    finally:
        p.close(timeout=10)
    assert restarts >= 1, "the stream finished before the first kill: nothing was tested"
    assert offsets == list(range(RECORDS)), "acknowledged offsets are not 0..n-1 in order"
    _assert_exactly_once(b.bootstrap, topic)
