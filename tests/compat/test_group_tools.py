"""Operator tools on a librdkafka (confluent-kafka) consumer group: `weir group describe`
and the Prometheus endpoint (`weir.metrics.listener`).

Goal: a group made by a real client shows its member (host, client id, decoded range
assignment) and per-partition committed offset, log end offset and lag in
`weir group describe`, and the same lag in kafka_exporter's `kafka_consumergroup_lag` series.
Method: consume 10 records per partition with confluent-kafka, commit synchronously,
produce 5 more per partition, then (member still in the group) run the weir binary and
scrape /metrics with urllib; bounded waits only."""

from __future__ import annotations

import subprocess
import urllib.request

from weirtest import ck_create_topic, ck_produce, ck_producer, free_port, unique, wait_until, weir_bin


def describe(bootstrap: str, group: str) -> str:
    out = subprocess.run(
        [str(weir_bin()), "group", "describe", group, "--bootstrap-server", bootstrap],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def row(text: str, topic: str, partition: int) -> list[str]:
    for line in text.splitlines():
        cells = line.split()
        if len(cells) >= 6 and cells[1] == topic and cells[2] == str(partition):
            return cells
    raise AssertionError(f"no row for {topic}-{partition} in\n{text}")


def test_confluent_group_lag_in_describe_and_metrics(broker_factory):
    from confluent_kafka import Consumer

    metrics_port = free_port()
    broker = broker_factory.new(
        config=f'group.initial.rebalance.delay.ms = 0\nweir.metrics.listener = "127.0.0.1:{metrics_port}"\n'
    )
    topic, group = unique("tools"), unique("tools-group")
    ck_create_topic(broker.bootstrap, topic, partitions=2)
    producer = ck_producer(broker.bootstrap)
    ck_produce(producer, topic, [{"value": b"v", "partition": p} for p in (0, 1) for _ in range(10)])

    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "client.id": "ck-tools",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "partition.assignment.strategy": "range",
        "session.timeout.ms": 10000,
    })
    try:
        consumer.subscribe([topic])
        seen = []

        def read_all() -> bool:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen.append(msg)
            return len(seen) >= 20

        wait_until(read_all, 60, "20 records through the group")
        consumer.commit(asynchronous=False)
        ck_produce(producer, topic, [{"value": b"w", "partition": p} for p in (0, 1) for _ in range(5)])

        text = describe(broker.bootstrap, group)
        assert "STATE Stable" in text, text
        assert "ck-tools" in text and "/127.0.0.1" in text, text
        assert f"{topic}-0,{topic}-1" in text, text
        for p in (0, 1):
            assert row(text, topic, p)[3:6] == ["10", "15", "5"], text

        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        for p in (0, 1):
            line = f'kafka_consumergroup_lag{{consumergroup="{group}",topic="{topic}",partition="{p}"}} 5'
            assert line in body.splitlines(), body
        assert f'kafka_consumergroup_lag_sum{{consumergroup="{group}",topic="{topic}"}} 10' in body
        assert f'kafka_consumergroup_members{{consumergroup="{group}"}} 1' in body
    finally:
        consumer.close()
    # After close() the member left: the group is Empty and the lag stays visible.
    wait_until(lambda: "STATE Empty" in describe(broker.bootstrap, group), 30, "group empty after close")
    assert row(describe(broker.bootstrap, group), topic, 0)[3:6] == ["10", "15", "5"]


def test_weir_and_confluent_members_share_a_group(broker_factory):
    """Goal: the native client's consumer protocol bytes and range assignment interoperate
    with librdkafka in one group, whichever member leads. Method: `weir consume --group`
    joins first (leader), a confluent-kafka consumer joins second; `weir group describe`
    must show two members with disjoint assignments covering the topic; SIGINT makes the
    weir member commit and leave, after which librdkafka owns every partition."""
    import signal
    from confluent_kafka import Consumer

    broker = broker_factory.new(config="group.initial.rebalance.delay.ms = 0\n")
    topic, group = unique("mixed"), unique("mixed-group")
    ck_create_topic(broker.bootstrap, topic, partitions=4)
    ck_produce(ck_producer(broker.bootstrap), topic,
               [{"value": b"v", "partition": p} for p in range(4) for _ in range(5)])
    weir_member = subprocess.Popen(
        [str(weir_bin()), "consume", topic, "--group", group, "--from", "earliest",
         "--bootstrap-server", broker.bootstrap],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    consumer = None
    try:
        wait_until(lambda: "STATE Stable" in describe(broker.bootstrap, group), 30, "weir member joined")
        consumer = Consumer({
            "bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": "ck-mixed",
            "auto.offset.reset": "earliest", "partition.assignment.strategy": "range",
        })
        consumer.subscribe([topic])

        def split() -> bool:
            consumer.poll(0.1)
            text = describe(broker.bootstrap, group)
            members = [line.split() for line in text.splitlines()
                       if line.startswith(("ck-mixed", "weir-cli"))]
            return len(members) == 2 and "STATE Stable" in text and text
        text = wait_until(split, 60, "two members sharing the topic")
        assignments = {}
        for line in text.splitlines():
            cells = line.split()
            if cells and cells[0].startswith(("ck-mixed", "weir-cli")) and len(cells) == 5:
                assignments[cells[2]] = set(cells[4].split(","))
        assert set(assignments) == {"ck-mixed", "weir-cli"}, text
        assert not (assignments["ck-mixed"] & assignments["weir-cli"]), text
        assert assignments["ck-mixed"] | assignments["weir-cli"] == {f"{topic}-{p}" for p in range(4)}, text

        weir_member.send_signal(signal.SIGINT)
        weir_member.wait(timeout=30)
        assert weir_member.returncode == 0, weir_member.stderr.read() if weir_member.stderr else ""

        def ck_owns_all() -> bool:
            consumer.poll(0.1)
            return len(consumer.assignment()) == 4
        wait_until(ck_owns_all, 60, "librdkafka owns every partition after the weir member left")
    finally:
        if weir_member.poll() is None:
            weir_member.kill()
        if consumer is not None:
            consumer.close()
