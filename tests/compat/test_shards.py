"""A broker of several shards (`num.shards`, docs/sharding.md) with real clients.

Goal: a broker that runs its partitions on three node loops, each with its own storage,
serves librdkafka and kafka-python exactly as a broker of one: requests spanning shards
(Produce, Fetch, ListOffsets, Metadata) are split and merged so clients see one broker;
keyed records keep their order per key; a consumer group's offsets and a transaction
crossing shards commit and abort everywhere; everything acknowledged survives a SIGKILL
of the whole broker; `/metrics` reports each partition once, from the shard that holds
it; and a data directory refuses a start with another shard count, naming both, and
keeps its own count when `num.shards` is left to its default (the cores).

Method: brokers of their own with `num.shards = 3` and fresh data dirs; topics of 12
partitions (every shard holds four); bounded waits; the real clients' own results are
compared with what was produced.
"""

from __future__ import annotations

import urllib.request

from weirtest import (
    ck_admin,
    ck_consumer,
    ck_create_topic,
    ck_produce,
    ck_producer,
    ck_read,
    free_port,
    unique,
    wait_until,
)

SHARDS = 3
PARTITIONS = 12


def sharded(broker_factory, **extra):
    config = f"num.shards = {SHARDS}\n"
    metrics = extra.pop("metrics", None)
    if metrics is not None:
        config += f'weir.metrics.listener = "{metrics}"\n'
    return broker_factory.new(config=config, name="sharded", **extra)


def produce_keyed(bootstrap: str, topic: str, keys: int, per_key: int, **conf) -> list:
    producer = ck_producer(bootstrap, **{"acks": "all", "enable.idempotence": True, **conf})
    messages = [
        {"key": f"k{key}".encode(), "value": f"k{key}-{n}".encode()}
        for n in range(per_key)
        for key in range(keys)
    ]
    deliveries = ck_produce(producer, topic, messages)
    assert all(d.error is None for d in deliveries), [d.error for d in deliveries if d.error]
    return deliveries


def read_all(bootstrap: str, topic: str, **conf) -> list:
    return ck_read(bootstrap, topic, {p: 0 for p in range(PARTITIONS)}, timeout=60,
                   consumer=None if not conf else _assigned(bootstrap, topic, conf))


def _assigned(bootstrap: str, topic: str, conf: dict):
    from confluent_kafka import TopicPartition

    consumer = ck_consumer(bootstrap, **conf)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    return consumer


def per_key(records) -> dict:
    out: dict = {}
    for r in records:
        out.setdefault(r.key, []).append(r.value)
    return out


def test_records_spread_over_shards_keep_their_order_and_survive_sigkill(broker_factory):
    broker = sharded(broker_factory)
    topic = unique("shards")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    deliveries = produce_keyed(broker.bootstrap, topic, keys=40, per_key=25)
    used = {d.partition for d in deliveries}
    assert len(used) >= PARTITIONS - 1, f"keys landed in partitions {sorted(used)} only"
    expected = per_key(deliveries)
    # One fetch covers partitions of every shard: its parts are merged into one answer.
    records = read_all(broker.bootstrap, topic)
    assert per_key(records) == expected
    # Each partition's offsets are dense from 0 (one shard wrote each, once).
    for p in range(PARTITIONS):
        offsets = [r.offset for r in records if r.partition == p]
        assert offsets == list(range(len(offsets))), f"partition {p}: {offsets[:10]}"
    broker.restart(hard=True)
    assert per_key(read_all(broker.bootstrap, topic)) == expected, "acknowledged records lost"
    # ListOffsets spans shards too: every partition's end is what was written there.
    consumer = ck_consumer(broker.bootstrap)
    from confluent_kafka import TopicPartition

    try:
        for p in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            assert (low, high) == (0, sum(1 for d in deliveries if d.partition == p)), p
    finally:
        consumer.close()


def test_a_group_consumes_every_partition_once_and_resumes_from_its_commits(broker_factory):
    from kafka import KafkaConsumer

    broker = sharded(broker_factory)
    topic, group = unique("shards-group"), unique("g")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    produce_keyed(broker.bootstrap, topic, keys=24, per_key=10)
    total = 240

    def consume(limit: int) -> list:
        consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 consumer_timeout_ms=3000, max_poll_records=50)
        got = []
        try:
            deadline_polls = 200
            while len(got) < limit and deadline_polls > 0:
                deadline_polls -= 1
                for records in consumer.poll(timeout_ms=500).values():
                    got.extend(records)
                    consumer.commit()
        finally:
            consumer.close()
        return got

    first = consume(total)
    assert len({(r.partition, r.offset) for r in first}) == total, len(first)
    assert {r.partition for r in first} == set(range(PARTITIONS))
    # The group's offsets live on one shard; every partition's commit is there.
    admin = ck_admin(broker.bootstrap)
    from confluent_kafka import ConsumerGroupTopicPartitions

    listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=15)
    committed = {tp.partition: tp.offset for tp in listed.topic_partitions if tp.topic == topic}
    assert sum(committed.values()) == total, committed
    broker.restart()
    produce_keyed(broker.bootstrap, topic, keys=24, per_key=1)
    second = consume(24)
    assert len(second) == 24, "the group did not resume from its committed offsets"


def test_a_transaction_across_shards_commits_and_aborts_everywhere(broker_factory):
    broker = sharded(broker_factory)
    topic = unique("shards-txn")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    producer = ck_producer(broker.bootstrap, **{"transactional.id": unique("txn"),
                                                "transaction.timeout.ms": 10000,
                                                "message.timeout.ms": 10000})
    producer.init_transactions(15)
    for outcome in ("commit", "abort", "commit"):
        producer.begin_transaction()
        for p in range(PARTITIONS):
            producer.produce(topic, value=f"{outcome}-{p}".encode(), partition=p)
        producer.flush(15)
        if outcome == "commit":
            producer.commit_transaction(15)
        else:
            producer.abort_transaction(15)
    records = read_all(broker.bootstrap, topic, **{"isolation.level": "read_committed"})
    values = sorted(r.value for r in records)
    assert values == sorted([f"commit-{p}".encode() for p in range(PARTITIONS)] * 2), values


def test_metrics_report_each_partition_once_from_its_shard(broker_factory):
    metrics = f"127.0.0.1:{free_port()}"
    broker = sharded(broker_factory, metrics=metrics)
    topic = unique("shards-metrics")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    deliveries = produce_keyed(broker.bootstrap, topic, keys=30, per_key=4)
    ends = {p: sum(1 for d in deliveries if d.partition == p) for p in range(PARTITIONS)}

    def scrape() -> dict:
        body = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10).read().decode()
        found = {}
        for line in body.splitlines():
            if line.startswith("kafka_topic_partition_current_offset{") and f'topic="{topic}"' in line:
                labels, value = line.rsplit(" ", 1)
                partition = int(labels.split('partition="')[1].split('"')[0])
                assert partition not in found, f"partition {partition} reported twice"
                found[partition] = int(float(value))
        return found

    wait_until(lambda: scrape() == ends, 15, f"every partition's offset once: {ends}")
    # Each shard's busy time is its own series; every shard handled some of the produce.
    body = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10).read().decode()
    busy = {}
    for line in body.splitlines():
        if line.startswith("weir_shard_state_machine_busy_seconds_total{"):
            labels, value = line.rsplit(" ", 1)
            busy[int(labels.split('shard="')[1].split('"')[0])] = float(value)
    assert sorted(busy) == list(range(SHARDS)), body[-3000:]
    assert all(seconds > 0 for seconds in busy.values()), busy


def test_a_directory_keeps_its_shard_count(broker_factory):
    broker = sharded(broker_factory)
    broker.stop()
    broker.args = ["--num-shards", "2"]
    try:
        broker.start(timeout=20)
        raise AssertionError("a start with another shard count was accepted")
    except RuntimeError as exc:
        text = str(exc)
        assert "num.shards" in text and "3" in text and "2" in text, text[-2000:]
    # Unset (the default: one shard per core), the directory keeps the count it has.
    broker.args = []
    broker.config_path.write_text("")
    broker.start(timeout=20)
    this_start = broker.log_path.read_text(errors="replace").split("===== start #")[-1]
    assert f"num.shards: {SHARDS} node loop(s)" in this_start, this_start[-2000:]
